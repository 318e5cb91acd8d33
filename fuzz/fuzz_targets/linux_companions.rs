//! `TCP_CONGESTION`, `TCP_CC_INFO` and `SO_MEMINFO` decoders: any bytes → no panic.
#![no_main]

use conniver::tcpinfo::linux::{CcInfo, CongestionControl, MemInfo};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(cc) = CongestionControl::decode(data) {
        assert!(!cc.as_str().is_empty() && cc.as_str().len() <= 16);
        let _ = CcInfo::decode(cc.as_str(), data);
    }
    for name in ["bbr", "vegas", "dctcp", "cubic", "nv"] {
        let _ = CcInfo::decode(name, data);
    }
    if let Some(m) = MemInfo::decode(data) {
        assert!(data.len() >= MemInfo::LEN);
        let _ = serde_json::to_string(&m).unwrap();
    }
});
