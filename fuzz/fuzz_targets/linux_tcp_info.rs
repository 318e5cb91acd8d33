//! Linux `tcp_info` decoder: any bytes, any release → no panic, and the normalized view
//! and its JSON are always producible.
#![no_main]

use conniver::tcpinfo::linux::{KernelRelease, LinuxTcpInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First two bytes pick the release, the rest is the kernel buffer.
    let (release, buf) = match data {
        [major, minor, rest @ ..] => (Some(KernelRelease::new(u16::from(*major % 9), u16::from(*minor % 40), 0)), rest),
        _ => (None, data),
    };
    if let Ok(raw) = LinuxTcpInfo::decode(buf, release) {
        assert_eq!(raw.len, buf.len());
        let info = raw.to_info();
        let json = serde_json::to_string(&info).expect("Info always serializes");
        assert!(json.starts_with('{'));
    } else {
        assert!(buf.len() < conniver::tcpinfo::linux::LINUX_MIN_LEN);
    }
    if let Ok(s) = std::str::from_utf8(buf) {
        let _ = KernelRelease::parse(s);
    }
});
