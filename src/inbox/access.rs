//! Who may see a conversation. Supervisors and admins see all of them; an agent sees
//! the ones assigned to them and the unassigned ones, or all when the admin allows
//! it. One rule, used by every page, the media files, search, the API and live updates.
//! Contacts follow it: an agent sees a contact through a conversation it may see, or
//! one that has no conversation yet (see `contact_scope`).

use crate::auth::{Role, User};
use crate::error::AppError;
use rusqlite::{Connection, OptionalExtension};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    /// The signed-in user; `None` for an API key (it owns no conversations).
    pub user_id: Option<i64>,
    pub role: Role,
    pub sees_all: bool,
    /// The business lets agents see every contact (not only those of their conversations).
    pub agents_see_all_contacts: bool,
}

impl Viewer {
    pub fn new(user_id: Option<i64>, role: Role, agents_see_all: bool) -> Viewer {
        Viewer {
            user_id,
            role,
            sees_all: role >= Role::Supervisor || agents_see_all,
            agents_see_all_contacts: false,
        }
    }

    /// With the business's "agents see all contacts" setting.
    #[must_use]
    pub fn with_all_contacts(mut self, agents_see_all_contacts: bool) -> Viewer {
        self.agents_see_all_contacts = agents_see_all_contacts;
        self
    }

    /// Sees every contact: sees every conversation, or the business allows it.
    pub fn sees_all_contacts(&self) -> bool {
        self.sees_all || self.agents_see_all_contacts
    }

    /// The viewer for a user, with the instance's current setting.
    pub fn for_user(c: &Connection, user: &User) -> rusqlite::Result<Viewer> {
        let s = crate::settings::inbox_settings(c)?;
        Ok(Viewer::new(Some(user.id), user.role, s.agents_see_all).with_all_contacts(s.agents_see_all_contacts))
    }

    pub fn for_role(c: &Connection, role: Role) -> rusqlite::Result<Viewer> {
        let s = crate::settings::inbox_settings(c)?;
        Ok(Viewer::new(None, role, s.agents_see_all).with_all_contacts(s.agents_see_all_contacts))
    }

    /// Whether a conversation with this assignee is visible.
    pub fn can_see(&self, assignee: Option<i64>) -> bool {
        self.sees_all || assignee.is_none() || (assignee.is_some() && assignee == self.user_id)
    }

    /// The same rule for SQL over `conversations c`: a condition with at most one
    /// positional parameter (`?`), and its value.
    pub fn sql(&self) -> (&'static str, Option<i64>) {
        if self.sees_all {
            ("1", None)
        } else {
            (
                "(c.assignee_id IS NULL OR c.assignee_id = ?)",
                Some(self.user_id.unwrap_or(-1)),
            )
        }
    }

    /// The contacts this viewer may see, as a condition over `contacts` for the contacts
    /// feature's queries (it does not know conversations). A contact with no
    /// conversation is visible: agents add customers themselves (a phone order, a walk-in)
    /// and must find them to write first; like an unassigned conversation, it belongs to
    /// no one yet. A contact whose every conversation is another agent's is not.
    pub fn contact_scope(&self) -> crate::contacts::Scope {
        if self.sees_all_contacts() {
            return crate::contacts::Scope::all();
        }
        let (visible, param) = self.sql();
        crate::contacts::Scope {
            sql: format!(
                "(NOT EXISTS (SELECT 1 FROM conversations c WHERE c.contact_id = contacts.id) \
                 OR EXISTS (SELECT 1 FROM conversations c WHERE c.contact_id = contacts.id AND {visible}))"
            ),
            param,
        }
    }

    /// The id of a visible conversation, else 404 (a refused conversation does not
    /// even admit it exists).
    pub fn check(&self, c: &Connection, conversation_id: i64) -> Result<(), AppError> {
        match find_assignee(c, conversation_id)? {
            Some(assignee) if self.can_see(assignee) => Ok(()),
            _ => Err(AppError::NotFound),
        }
    }
}

/// `Some(assignee)` when the conversation exists (`Some(None)`: nobody has it). It lives
/// here, with the rule that reads it: `conversations` imports this module, so this one
/// must not import `conversations`.
pub fn find_assignee(c: &Connection, id: i64) -> rusqlite::Result<Option<Option<i64>>> {
    c.prepare_cached("SELECT assignee_id FROM conversations WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_see_their_own_and_unassigned() {
        let agent = Viewer::new(Some(7), Role::Agent, false);
        assert!(agent.can_see(None));
        assert!(agent.can_see(Some(7)));
        assert!(!agent.can_see(Some(8)));
        assert!(Viewer::new(Some(7), Role::Agent, true).can_see(Some(8)));
        assert!(Viewer::new(Some(1), Role::Supervisor, false).can_see(Some(8)));
        let agent = agent.with_all_contacts(true);
        assert!(agent.sees_all_contacts() && !agent.sees_all, "contacts only");
        let key = Viewer::new(None, Role::Agent, false);
        assert!(key.can_see(None));
        assert!(!key.can_see(Some(8)));
    }
}
