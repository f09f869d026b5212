//! Integration tests of invite-platform: the Parsing Service and Integration Service clients
//! against wiremock.

mod directory;
mod helpers;
mod parsing;
