//! Integration tests of invite-core: the limit rules on the local account manager. The engine's
//! scenarios (an Account Manager outage among them) run in the workspace tests
//! (`tests/it/engine`), once per store.

mod limits;
