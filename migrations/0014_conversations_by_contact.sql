-- A contact's conversations, for the visibility rule on contacts (an agent sees a
-- contact through a conversation it may see) and the contact page.
CREATE INDEX conversations_contact ON conversations(contact_id, assignee_id);
