//! Windows `TCP_INFO_v0/v1/v2` decoder: the first byte is the version asked for, the rest
//! the bytes `WSAIoctl(SIO_TCP_INFO)` returned. Any input → no panic; the version decoded
//! is the newest one asked for that fits; the normalized view and its JSON are always
//! producible.
#![no_main]

use conniver::Error;
use conniver::tcpinfo::SysInfo;
use conniver::tcpinfo::windows::{
    WINDOWS_MAX_VERSION, WINDOWS_V0_LEN, WindowsTcpInfo, windows_len,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (version, buf) = match data {
        [v, rest @ ..] => (u32::from(*v), rest),
        [] => (0, data),
    };
    let raw = match WindowsTcpInfo::decode(buf, version) {
        Ok(raw) => raw,
        Err(e) => {
            assert!(
                matches!(e, Error::Truncated { len, min: WINDOWS_V0_LEN } if len == buf.len()),
                "{e:?} for {} bytes",
                buf.len()
            );
            assert!(buf.len() < WINDOWS_V0_LEN);
            return;
        }
    };
    assert!(buf.len() >= WINDOWS_V0_LEN);
    assert_eq!(raw.len, buf.len());
    // The newest version asked for whose struct fits in what came back.
    let want = (0..=version.min(WINDOWS_MAX_VERSION))
        .rev()
        .find(|v| windows_len(*v).is_some_and(|l| l <= buf.len()))
        .expect("v0 fits");
    assert_eq!(raw.version, want);
    assert_eq!(raw.v1.is_some(), raw.version >= 1);
    assert_eq!(raw.v2.is_some(), raw.version >= 2);

    // Asking for exactly the version decoded gives the same answer.
    assert_eq!(WindowsTcpInfo::decode(buf, raw.version).unwrap(), raw);
    // The v0 prefix alone decodes to the same v0 fields.
    let mut v0 = raw;
    v0.version = 0;
    v0.len = WINDOWS_V0_LEN;
    v0.v1 = None;
    v0.v2 = None;
    assert_eq!(
        WindowsTcpInfo::decode(&buf[..WINDOWS_V0_LEN], version).unwrap(),
        v0
    );

    let _ = raw.tcp_state();
    let info = raw.to_info();
    assert!(matches!(info.sys(), SysInfo::Windows(r) if *r == raw));
    let json = serde_json::to_string(&info).expect("Info always serializes");
    assert!(json.starts_with('{'));
    serde_json::to_string(&raw).expect("the raw struct always serializes");
});
