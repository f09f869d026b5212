//! Integration tests of invite-platform: the Parsing Service client against wiremock, the
//! Vault secret store against a real Vault-compatible server.

mod helpers;
mod parsing;
mod vault;
