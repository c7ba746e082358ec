pub mod futures;
pub mod stream;

pub(crate) mod common;
pub mod optional;
