//! Integration tests of invite-platform: the Parsing Service client against wiremock.

mod helpers;
mod parsing;
