//! The host's check of a plugin's output batch (`OutputView::parse`, what
//! `host/src/plugin/codec/packed.rs` decodes), on bytes a hostile guest
//! chose: either it is refused with a reason, or every span, index and
//! route it holds is in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_batch::{Limits, OutputView};

fuzz_target!(|data: &[u8]| {
    // The first 3 bytes choose the call: input events (0..65535), keyed.
    let Some((head, buf)) = data.split_at_checked(3) else {
        return;
    };
    let limits = Limits {
        inputs: usize::from(u16::from_le_bytes([head[0], head[1]])),
        max_bytes: 1 << 20,
        keyed: head[2] & 1 == 1,
    };
    let Ok(view) = OutputView::parse(buf, &limits) else {
        return;
    };
    assert!(buf.len() <= limits.max_bytes);
    let mut touched = 0usize;
    for o in view.outputs() {
        assert!(
            (o.input as usize) < limits.inputs,
            "input {} of {}",
            o.input,
            limits.inputs
        );
        if let Some(r) = o.route {
            assert!((r as usize) < view.routes_len(), "route {r}");
            touched += view.route(r).len();
        }
        touched += o.key.map_or(0, <[u8]>::len) + o.value.len();
        for (name, value) in o.headers {
            touched += name.len() + value.len();
        }
    }
    for i in 0..view.outputs_len() {
        assert!(view.output(i).is_some());
    }
    assert!(view.output(view.outputs_len()).is_none());
    for e in view.errors() {
        assert!((e.input as usize) < limits.inputs);
        touched += e.message.len();
    }
    let writes = view.writes().count();
    let timers = view.timers().count();
    if !limits.keyed {
        assert_eq!(
            (writes, timers),
            (0, 0),
            "state ops in a call that is not keyed"
        );
    }
    for w in view.writes() {
        touched += w.key.len() + w.value.map_or(0, <[u8]>::len);
    }
    for t in view.timers() {
        touched += t.key.len();
    }
    std::hint::black_box(touched);
});
