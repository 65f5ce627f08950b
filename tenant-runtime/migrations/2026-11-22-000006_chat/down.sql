DROP INDEX chat_messages_session_idx;
DROP TABLE chat_messages;
DROP INDEX chat_sessions_project_idx;
DROP TABLE chat_sessions;
