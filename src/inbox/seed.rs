//! Fills a database with a realistic inbox for benchmarks and demos: contacts, one
//! conversation each, and messages in both directions (text in Indonesian and
//! English, so search has words to find). Used by `benches/inbox.rs`.

use rusqlite::{Connection, params};

const WORDS: [&str; 24] = [
    "halo", "kak", "pesanan", "ongkir", "stok", "ready", "baju", "ukuran", "transfer", "sudah", "terima", "kasih",
    "order", "price", "size", "delivery", "tomorrow", "invoice", "refund", "warna", "hitam", "putih", "promo",
    "diskon",
];

/// Adds `contacts` contacts, one conversation each on `phone_number_id`, and
/// `per_conversation` messages in each; `now` is the newest message time. Runs in the
/// caller's transaction.
pub fn fill(
    c: &Connection,
    phone_number_id: &str,
    contacts: i64,
    per_conversation: i64,
    now: i64,
) -> rusqlite::Result<()> {
    let mut contact = c.prepare_cached(
        "INSERT INTO contacts (wa_id, profile_name, phone_e164, created_at, last_seen_at) VALUES (?1, ?2, ?3, ?4, ?4)",
    )?;
    let mut conv = c.prepare_cached(
        "INSERT INTO conversations (phone_number_id, contact_id, status, last_message_at, last_inbound_at, preview,
                                    created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?4, '', ?4, ?4)",
    )?;
    let mut msg = c.prepare_cached(
        "INSERT INTO messages (phone_number_id, contact_id, conversation_id, direction, wamid, kind, body, sent_at,
                               created_at, status)
         VALUES (?1, ?2, ?3, ?4, ?5, 'text', ?6, ?7, ?7, ?8)",
    )?;
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let base: i64 = c.query_row("SELECT coalesce(max(id), 0) FROM contacts", [], |r| r.get(0))?;
    for i in 0..contacts {
        let n = base + i + 1;
        let wa = format!("62812{n:08}");
        let at = now - (contacts - i) * 30;
        contact.execute(params![wa, format!("Pelanggan {n}"), format!("+{wa}"), at])?;
        let contact_id = c.last_insert_rowid();
        let status = ["open", "open", "pending", "resolved"][(next() % 4) as usize];
        conv.execute(params![phone_number_id, contact_id, status, at])?;
        let conv_id = c.last_insert_rowid();
        let (mut last_id, mut last_in, mut preview) = (0, 0, String::new());
        for k in 0..per_conversation {
            let words: Vec<&str> = (0..6)
                .map(|_| WORDS[usize::try_from(next() % WORDS.len() as u64).unwrap_or(0)])
                .collect();
            let body = format!("{} #{n}-{k}", words.join(" "));
            let inbound = k % 2 == 0;
            let t = at - (per_conversation - k) * 60;
            msg.execute(params![
                phone_number_id,
                contact_id,
                conv_id,
                if inbound { "in" } else { "out" },
                format!("wamid.seed{n}.{k}"),
                body,
                t,
                if inbound { None } else { Some("read") }
            ])?;
            last_id = c.last_insert_rowid();
            if inbound {
                last_in = last_id;
            }
            preview = body;
        }
        c.execute(
            "UPDATE conversations SET last_message_id = ?2, last_inbound_id = ?3, preview = ?4 WHERE id = ?1",
            params![conv_id, last_id, last_in, preview],
        )?;
    }
    Ok(())
}
