//! The import pages: upload, dry run with the column choices, progress, report.

use actix_web::web;

pub fn configure(_cfg: &mut web::ServiceConfig) {}
