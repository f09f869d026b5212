//! Integration tests of invite-core: the limit rules on the local account manager. The engine's
//! scenarios run in the workspace tests (`tests/it/engine`), once per store.

mod limits;
