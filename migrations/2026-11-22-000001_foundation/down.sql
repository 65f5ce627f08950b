DROP TABLE api_tokens;
DROP TABLE local_credentials;
DROP TABLE identities;
DROP TABLE users;
