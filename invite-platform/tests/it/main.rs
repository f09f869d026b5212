//! Integration tests of invite-platform: the Parsing Service and Integration Service clients
//! against wiremock, the Vault secret store against a real Vault-compatible server.

mod account_manager;
mod directory;
mod helpers;
mod parsing;
mod vault;
