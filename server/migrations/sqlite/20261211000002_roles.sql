-- Console roles (issue 18): which console a user may sign into, by
-- approving the sign-in on their own device. NULL: none (an end user).
-- admin: everything; operator: the operator console; agent: the agent
-- console (verifying callers).
ALTER TABLE users ADD COLUMN role TEXT CHECK (role IN ('admin', 'operator', 'agent'));
