//! Import tests over the fixture files.
