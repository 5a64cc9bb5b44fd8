//! Reading a spreadsheet export as real files come: UTF-8 with or without a BOM (or
//! Windows-1252 from an old Excel, decoded), `,` `;` or tab detected from the header
//! (and Excel's `sep=;` first line), quoted fields with commas and newlines, header
//! names matched loosely. Each data row becomes a [`Row`] with its physical line.

use super::{Options, Skip};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};

/// What a column holds, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Phone,
    Name,
    Email,
    Labels,
    /// Per-row marketing consent: TRUE/FALSE, ya/tidak.
    Opted,
    ConsentAt,
    ConsentSource,
    /// Anything else: a custom field, or ignored.
    Other,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Phone => "phone",
            Role::Name => "name",
            Role::Email => "email",
            Role::Labels => "labels",
            Role::Opted => "opted",
            Role::ConsentAt => "consent_at",
            Role::ConsentSource => "consent_source",
            Role::Other => "other",
        }
    }
}

/// A header as a key: lower case, letters and digits only (`No. HP` is `nohp`).
fn key(header: &str) -> String {
    header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The role a header names, if it is one of the known names.
pub fn role_of(header: &str) -> Role {
    match key(header).as_str() {
        "phone" | "phonenumber" | "phoneno" | "nomor" | "nohp" | "nomorhp" | "hp" | "mobile" | "mobilephone"
        | "whatsapp" | "whatsappnumber" | "wa" | "nowa" | "nomorwa" | "nomorwhatsapp" | "number" | "telepon"
        | "telp" | "notelp" | "handphone" => Role::Phone,
        "name" | "nama" | "fullname" | "namalengkap" | "contactname" | "customername" | "namapelanggan" => Role::Name,
        "email" | "surel" => Role::Email,
        "labels" | "label" | "tags" | "tag" => Role::Labels,
        "whatsappopted" | "whatsappoptin" | "optin" | "optedin" | "opted" | "waopted" => Role::Opted,
        "consentat" | "optinat" | "optedinat" | "consentdate" | "tanggalpersetujuan" => Role::ConsentAt,
        "consentsource" | "optinsource" | "sumberpersetujuan" => Role::ConsentSource,
        _ => Role::Other,
    }
}

/// Why a file cannot be read at all (the message key names the problem).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    Empty,
    /// Excel's "Unicode text": UTF-16.
    Utf16,
    NoPhoneColumn,
    TooManyColumns,
    /// The CSV structure broke at this line.
    Broken(u64),
}

impl FileError {
    pub fn key(&self) -> &'static str {
        match self {
            FileError::Empty => "import.error.empty",
            FileError::Utf16 => "import.error.utf16",
            FileError::NoPhoneColumn => "import.error.no_phone_column",
            FileError::TooManyColumns => "import.error.too_many_columns",
            FileError::Broken(_) => "import.error.broken",
        }
    }
}

/// The text of a file, and which encoding it was in: UTF-8 is the file's own bytes
/// (borrowed, not copied: a file of 100,000 rows is held once), Windows-1252 a decoded copy.
pub struct Decoded<'a> {
    pub text: Cow<'a, str>,
    /// `utf-8`, or `windows-1252` when the bytes were not UTF-8.
    pub encoding: &'static str,
}

/// The file's text: UTF-8 (BOM dropped), else decoded as Windows-1252, the code page an
/// Excel of Indonesian or English Windows saves "CSV (Comma delimited)" in.
pub fn decode(bytes: &[u8]) -> Result<Decoded<'_>, FileError> {
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(FileError::Utf16);
    }
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let (text, encoding) = match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), "utf-8"),
        Err(_) => {
            let (s, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes);
            (s, "windows-1252")
        }
    };
    if text.trim().is_empty() {
        return Err(FileError::Empty);
    }
    Ok(Decoded { text, encoding })
}

/// The delimiter of the header line: the most frequent of `,` `;` and tab outside quotes
/// (a comma when none is there: a one-column file).
pub fn sniff_delimiter(header_line: &str) -> u8 {
    let (mut quoted, mut counts) = (false, [0usize; 3]);
    for ch in header_line.chars() {
        match ch {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    if counts[best] == 0 {
        return b',';
    }
    [b',', b';', b'\t'][best]
}

/// Most columns a file may have.
pub const MAX_COLUMNS: usize = 100;

/// The columns of a file: header text and role, in order.
#[derive(Debug, Clone)]
pub struct Layout {
    pub delimiter: u8,
    pub headers: Vec<String>,
    pub roles: Vec<Role>,
}

impl Layout {
    /// The first column with `role`.
    pub fn column(&self, role: Role) -> Option<usize> {
        self.roles.iter().position(|r| *r == role)
    }

    /// Custom field name per column: the mapping chosen, else each other column under
    /// its header (an empty header is ignored).
    pub fn fields(&self, chosen: Option<&BTreeMap<usize, String>>) -> Vec<Option<String>> {
        (0..self.headers.len())
            .map(|i| {
                if self.roles[i] != Role::Other {
                    return None;
                }
                match chosen {
                    Some(map) => map.get(&i).cloned(),
                    None => Some(self.headers[i].trim().to_string()).filter(|h| !h.is_empty()),
                }
            })
            .collect()
    }
}

/// One data row as it will be stored.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Physical line where the row starts (header = 1).
    pub line: u64,
    /// The phone as the file wrote it.
    pub phone_raw: String,
    /// E.164, when valid.
    pub phone: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub labels: Vec<String>,
    /// The row's own consent claim (its `whatsapp_opted` cell), if any.
    pub opted: Option<bool>,
    pub consent_at: Option<i64>,
    pub consent_source: String,
    /// Why it is skipped before the database is asked (bad number, duplicate...).
    pub skip: Option<Skip>,
}

/// Rows of a file one after the other; remembers the numbers it has seen, so the second
/// row with a number is reported as a duplicate (the first one wins).
pub struct Rows<'a> {
    reader: csv::Reader<std::io::Cursor<Cow<'a, [u8]>>>,
    pub layout: Layout,
    fields: Vec<Option<String>>,
    region: String,
    /// The numbers seen, as their digits (E.164 has at most 15: 8 bytes each instead of
    /// a string, for the 100,000 numbers of a big file).
    seen: HashSet<u64>,
    record: csv::StringRecord,
    /// Lines before the header (Excel's `sep=;`).
    offset: u64,
    /// Where line counting has got to: a byte offset and the line it is on.
    scan_pos: usize,
    scan_line: u64,
}

/// Longest name, and longest custom field value, a row may carry.
const MAX_NAME: usize = 100;
const MAX_VALUE: usize = 500;

impl<'a> Rows<'a> {
    /// Opens a decoded file: finds the delimiter and reads the header.
    pub fn open(decoded: Decoded<'a>, options: &Options) -> Result<Rows<'a>, FileError> {
        let mut text = decoded.text;
        let mut offset = 0;
        let first = text.lines().next().unwrap_or("").trim().to_string();
        let mut delimiter = None;
        if let Some(sep) = first.strip_prefix("sep=").or_else(|| first.strip_prefix("SEP=")) {
            delimiter = sep.bytes().next().filter(|b| matches!(b, b',' | b';' | b'\t' | b'|'));
            let cut = text.find('\n').map_or(text.len(), |i| i + 1);
            text = match text {
                Cow::Borrowed(t) => Cow::Borrowed(&t[cut..]),
                Cow::Owned(mut t) => {
                    t.drain(..cut);
                    Cow::Owned(t)
                }
            };
            offset = 1;
        }
        let header_line = text.lines().next().unwrap_or("");
        let delimiter = delimiter.unwrap_or_else(|| sniff_delimiter(header_line));
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(std::io::Cursor::new(match text {
                Cow::Borrowed(t) => Cow::Borrowed(t.as_bytes()),
                Cow::Owned(t) => Cow::Owned(t.into_bytes()),
            }));
        let mut header = csv::StringRecord::new();
        match reader.read_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(FileError::Empty),
            Err(e) => return Err(FileError::Broken(e.position().map_or(1, |p| p.line() + offset))),
        }
        let headers: Vec<String> = header.iter().map(|h| h.trim().to_string()).collect();
        if headers.len() > MAX_COLUMNS {
            return Err(FileError::TooManyColumns);
        }
        // The first column of a role takes it; a second one is a custom field.
        let mut taken = HashSet::new();
        let roles: Vec<Role> = headers
            .iter()
            .map(|h| match role_of(h) {
                Role::Other => Role::Other,
                r if taken.insert(r) => r,
                _ => Role::Other,
            })
            .collect();
        let layout = Layout {
            delimiter,
            headers,
            roles,
        };
        if layout.column(Role::Phone).is_none() {
            return Err(FileError::NoPhoneColumn);
        }
        let fields = layout.fields(options.fields.as_ref());
        Ok(Rows {
            reader,
            layout,
            fields,
            region: options.region.clone(),
            seen: HashSet::new(),
            record: csv::StringRecord::new(),
            offset,
            scan_pos: 0,
            scan_line: 1,
        })
    }

    /// The next row that is not blank; `None` at the end.
    pub fn next_row(&mut self) -> Option<Result<Row, FileError>> {
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return None,
                Ok(true) => {}
                Err(e) => {
                    return Some(Err(FileError::Broken(
                        e.position().map_or(0, |p| p.line() + self.offset),
                    )));
                }
            }
            if self.record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            let line = self.line_of_record() + self.offset;
            return Some(Ok(self.interpret(line)));
        }
    }

    /// The physical line the current record starts on. The reader's own line count is
    /// one short after a CRLF (Excel's line end): a record's position can be the `\n` of
    /// the line before. So the line is counted here from the record's byte offset, past
    /// any line ends, incrementally (each byte is looked at once).
    fn line_of_record(&mut self) -> u64 {
        let bytes = self.reader.get_ref().get_ref();
        let mut start = self
            .record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(self.scan_pos)
            .max(self.scan_pos);
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        let end = start.min(bytes.len());
        #[expect(
            clippy::naive_bytecount,
            reason = "each byte is counted once; a crate for it is not worth it"
        )]
        let newlines = bytes[self.scan_pos..end].iter().filter(|b| **b == b'\n').count();
        self.scan_line += u64::try_from(newlines).unwrap_or(0);
        self.scan_pos = end;
        self.scan_line
    }

    /// How many rows that are not blank the rest of the file has (nothing interpreted).
    pub fn count(mut self) -> Result<i64, FileError> {
        let mut n = 0;
        loop {
            match self.reader.read_record(&mut self.record) {
                Ok(false) => return Ok(n),
                Ok(true) if self.record.iter().all(|c| c.trim().is_empty()) => {}
                Ok(true) => n += 1,
                Err(e) => return Err(FileError::Broken(e.position().map_or(0, |p| p.line() + self.offset))),
            }
        }
    }

    fn cell(&self, role: Role) -> &str {
        self.layout
            .column(role)
            .and_then(|i| self.record.get(i))
            .map_or("", str::trim)
    }

    fn interpret(&mut self, line: u64) -> Row {
        let mut row = Row {
            line,
            phone_raw: self.cell(Role::Phone).to_string(),
            name: self.cell(Role::Name).to_string(),
            consent_source: self.cell(Role::ConsentSource).to_string(),
            ..Row::default()
        };
        let mut skip = None;
        let email = self.cell(Role::Email);
        if !email.is_empty() {
            row.attributes.insert("email".into(), email.to_string());
        }
        for (i, field) in self.fields.iter().enumerate() {
            if let (Some(f), Some(v)) = (field, self.record.get(i)) {
                let v = v.trim();
                if !v.is_empty() {
                    row.attributes.insert(f.clone(), v.to_string());
                }
            }
        }
        row.labels = split_labels(self.cell(Role::Labels));
        match parse_bool(self.cell(Role::Opted)) {
            Ok(b) => row.opted = b,
            Err(()) => skip = skip.or(Some(Skip::InvalidOptIn)),
        }
        match parse_date(self.cell(Role::ConsentAt)) {
            Ok(t) => row.consent_at = t,
            Err(()) => skip = skip.or(Some(Skip::InvalidConsentDate)),
        }
        if row.name.chars().count() > MAX_NAME
            || row.consent_source.chars().count() > MAX_VALUE
            || row.attributes.values().any(|v| v.chars().count() > MAX_VALUE)
            || row.labels.iter().any(|l| l.chars().count() > super::MAX_LABEL)
        {
            skip = skip.or(Some(Skip::TooLong));
        }
        if row.phone_raw.is_empty() {
            skip = Some(Skip::MissingPhone);
        } else {
            match crate::contacts::normalize_phone(&row.phone_raw, &self.region) {
                Ok(e164) => {
                    // Only a row that would be applied claims its number.
                    if skip.is_none() && !self.seen.insert(number_key(&e164)) {
                        skip = Some(Skip::DuplicateInFile);
                    }
                    row.phone = e164;
                }
                Err(_) => skip = Some(Skip::InvalidNumber),
            }
        }
        row.skip = skip;
        row
    }
}

/// A number in E.164 as the integer its digits make (`+6281234567890` is
/// 6281234567890): one number, one key, since E.164 numbers never start with 0 and have
/// at most 15 digits. Numbers that passed the phone check always fit.
fn number_key(e164: &str) -> u64 {
    e164.trim_start_matches('+').parse().unwrap_or(u64::MAX)
}

/// Labels in one cell, split on `,` `;` or `|`.
pub fn split_labels(cell: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in cell.split([',', ';', '|']).map(str::trim).filter(|l| !l.is_empty()) {
        if !out.iter().any(|o| o.to_lowercase() == l.to_lowercase()) {
            out.push(l.to_string());
        }
    }
    out
}

/// A consent cell: TRUE/FALSE, yes/no, ya/tidak, y/n, 1/0; empty is no answer.
fn parse_bool(cell: &str) -> Result<Option<bool>, ()> {
    match cell.trim().to_lowercase().as_str() {
        "" => Ok(None),
        "true" | "yes" | "y" | "ya" | "iya" | "1" | "opted_in" | "opt-in" | "optin" => Ok(Some(true)),
        "false" | "no" | "n" | "tidak" | "tdk" | "0" | "opted_out" | "opt-out" | "optout" => Ok(Some(false)),
        _ => Err(()),
    }
}

/// When consent was given: `2026-11-30`, `2026-11-30 14:05[:09]`, RFC 3339, or the
/// Indonesian `30/11/2026`; dates without a zone are UTC. Empty is "now".
fn parse_date(cell: &str) -> Result<Option<i64>, ()> {
    use time::macros::format_description as fd;
    let s = cell.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(Some(t.unix_timestamp()));
    }
    let datetimes = [
        fd!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        fd!("[year]-[month]-[day] [hour]:[minute]"),
        fd!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    ];
    for f in datetimes {
        if let Ok(t) = time::PrimitiveDateTime::parse(s, &f) {
            return Ok(Some(t.assume_utc().unix_timestamp()));
        }
    }
    let dates = [
        fd!("[year]-[month]-[day]"),
        fd!("[day padding:none]/[month padding:none]/[year]"),
    ];
    for f in dates {
        if let Ok(d) = time::Date::parse(s, &f) {
            return Ok(Some(d.midnight().assume_utc().unix_timestamp()));
        }
    }
    Err(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<Row> {
        let opts = Options {
            region: "ID".into(),
            ..Options::default()
        };
        let mut r = Rows::open(decode(text.as_bytes()).unwrap(), &opts).unwrap();
        std::iter::from_fn(|| r.next_row()).map(Result::unwrap).collect()
    }

    #[test]
    fn headers_match_loosely() {
        for h in [
            "Phone",
            "phone_number",
            "No HP",
            "no_hp",
            "Nomor HP",
            "WhatsApp",
            "WA",
            "Mobile",
            "number",
        ] {
            assert_eq!(role_of(h), Role::Phone, "{h}");
        }
        assert_eq!(role_of("Nama"), Role::Name);
        assert_eq!(role_of("E-mail"), Role::Email);
        assert_eq!(role_of("WhatsApp Opted"), Role::Opted);
        assert_eq!(role_of("opt_in"), Role::Opted);
        assert_eq!(role_of("Kota"), Role::Other);
    }

    #[test]
    fn the_delimiter_is_found_in_the_header() {
        assert_eq!(sniff_delimiter("nama;no_hp;kota"), b';');
        assert_eq!(sniff_delimiter("name,phone"), b',');
        assert_eq!(sniff_delimiter("name\tphone"), b'\t');
        assert_eq!(sniff_delimiter("\"a;b\",phone"), b',', "inside quotes does not count");
        assert_eq!(sniff_delimiter("phone"), b',');
    }

    #[test]
    fn a_bom_semicolons_and_quoted_newlines_keep_physical_lines() {
        let t =
            "\u{feff}nama;no_hp;alamat\nAni;0812-3456-7890;\"Jl. Merdeka 1;\nBandung\"\nBudi;0812 3456 7891;Jakarta\n";
        let r = rows(t);
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].line, r[1].line), (2, 4));
        let crlf = rows(&t.replace('\n', "\r\n").replace("Budi", "\r\n;;\r\nBudi"));
        assert_eq!(
            (crlf[0].line, crlf[1].line),
            (2, 6),
            "CRLF, a blank line and an empty row"
        );
        assert_eq!(
            r[0].attributes.get("alamat").map(String::as_str),
            Some("Jl. Merdeka 1;\nBandung")
        );
        assert_eq!(r[1].phone, "+6281234567891");
    }

    #[test]
    fn excel_sep_line_and_windows_1252() {
        let mut bytes = b"sep=;\r\nnama;hp\r\nJos\xe9;081234567890\r\n".to_vec();
        let d = decode(&bytes).unwrap();
        assert_eq!(d.encoding, "windows-1252");
        let opts = Options {
            region: "ID".into(),
            ..Options::default()
        };
        let mut r = Rows::open(d, &opts).unwrap();
        let row = r.next_row().unwrap().unwrap();
        assert_eq!((row.name.as_str(), row.line), ("José", 3));
        bytes.clear();
        assert_eq!(decode(&[0xFF, 0xFE, b'a', 0]).err(), Some(FileError::Utf16));
    }

    #[test]
    fn bad_rows_carry_their_reason() {
        let r =
            rows("phone,name,opt_in\n0812 3456 7890,A,ya\n+62 812-3456-7890,B,\n12,C,\n,D,\n0812 3456 7892,E,maybe\n");
        let skips: Vec<_> = r.iter().map(|r| r.skip).collect();
        assert_eq!(
            skips,
            [
                None,
                Some(Skip::DuplicateInFile),
                Some(Skip::InvalidNumber),
                Some(Skip::MissingPhone),
                Some(Skip::InvalidOptIn)
            ]
        );
        assert_eq!(r[0].opted, Some(true));
    }

    #[test]
    fn labels_split_and_dates_parse() {
        assert_eq!(split_labels("VIP; Bandung | vip,promo"), ["VIP", "Bandung", "promo"]);
        assert_eq!(parse_date("2026-11-30"), Ok(Some(1_795_996_800)));
        assert_eq!(parse_date("30/11/2026"), parse_date("2026-11-30"));
        assert!(parse_date("kemarin").is_err());
        assert_eq!(parse_date(""), Ok(None));
    }
}
