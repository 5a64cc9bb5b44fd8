-- When each user last signed in, shown on the team page.
ALTER TABLE users ADD COLUMN last_login_at INTEGER;
