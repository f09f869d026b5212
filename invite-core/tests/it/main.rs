//! Integration tests of invite-core: the limit rules on the local account manager, and the
//! engine through an Account Manager outage (memory only: the manager's absence is the same on
//! every store). The engine's scenarios run in the workspace tests (`tests/it/engine`), once per
//! store.

mod limits;
mod manager_outage;
