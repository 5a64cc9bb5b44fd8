//! Account data (P1): the business profile, the WhatsApp numbers with their Meta ids,
//! and the users with their roles, as one JSON for the business. Never a token, an app
//! secret, a verify token, a password hash or a TOTP secret: the shape below has no
//! field for one.

use rusqlite::Connection;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct AccountExport {
    pub format: &'static str,
    pub exported_at: String,
    pub business: Option<BusinessOut>,
    pub numbers: Vec<NumberOut>,
    pub users: Vec<UserOut>,
    /// Where each part is corrected in the appliance.
    pub corrected_at: Corrections,
}

#[derive(Debug, Serialize)]
pub struct BusinessOut {
    pub name: String,
    pub owner_name: String,
    pub email: String,
    pub phone: String,
    pub address: String,
    pub industry: String,
    pub timezone: String,
    pub locale: String,
}

#[derive(Debug, Serialize)]
pub struct NumberOut {
    pub display_name: String,
    pub phone_number_id: String,
    pub waba_id: String,
    pub business_manager_id: String,
    pub meta_app_id: String,
    pub messages_per_second: i64,
    pub connected_at: String,
}

#[derive(Debug, Serialize)]
pub struct UserOut {
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub active: bool,
    pub mfa_enabled: bool,
    pub created_at: String,
    pub last_sign_in_at: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Corrections {
    pub business: &'static str,
    pub numbers: &'static str,
    pub users: &'static str,
}

pub const CORRECTIONS: Corrections = Corrections {
    business: "/admin/business",
    numbers: "/admin/whatsapp",
    users: "/admin/users",
};

fn iso(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

pub fn build(c: &Connection, now: i64) -> rusqlite::Result<AccountExport> {
    let business = crate::settings::find_business(c)?.map(|b| BusinessOut {
        name: b.name,
        owner_name: b.owner_name,
        email: b.email,
        phone: b.phone,
        address: b.address,
        industry: b.industry,
        timezone: b.timezone,
        locale: b.locale,
    });
    let numbers = crate::whatsapp::numbers::repo::list_numbers(c)?
        .into_iter()
        .map(|n| NumberOut {
            display_name: n.display_name,
            phone_number_id: n.phone_number_id,
            waba_id: n.waba_id,
            business_manager_id: n.business_manager_id,
            meta_app_id: n.meta_app_id,
            messages_per_second: n.mps,
            connected_at: iso(n.created_at),
        })
        .collect();
    let users = crate::auth::repo::list_users(c)?
        .into_iter()
        .map(|u| UserOut {
            name: u.name,
            email: u.email,
            role: u.role.as_str(),
            active: u.active,
            mfa_enabled: u.mfa_enabled,
            created_at: iso(u.created_at),
            last_sign_in_at: u.last_login_at.map(iso),
        })
        .collect();
    Ok(AccountExport {
        format: "whacaster.account.v1",
        exported_at: iso(now),
        business,
        numbers,
        users,
        corrected_at: CORRECTIONS,
    })
}

/// The download, with its audit line (in the same transaction as the read, on the writer).
pub fn export(c: &Connection, actor: &crate::audit::Actor, now: i64) -> rusqlite::Result<AccountExport> {
    let out = build(c, now)?;
    crate::audit::record(
        c,
        actor,
        "account.export",
        "account",
        &format!("{} numbers, {} users", out.numbers.len(), out.users.len()),
        now,
    )?;
    Ok(out)
}
