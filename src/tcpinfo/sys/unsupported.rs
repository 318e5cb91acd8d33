//! Targets without a TCP-info backend: build, and say so at run time.

use crate::error::{Error, Result};
use crate::tcpinfo::{Info, SnapshotOptions, SocketDescriptor};

pub(crate) fn snapshot(_socket: SocketDescriptor<'_>, _options: SnapshotOptions) -> Result<Info> {
    Err(Error::unsupported())
}
