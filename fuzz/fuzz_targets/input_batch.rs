//! The SDK's check of an input batch (`InputView::parse`, the guest side):
//! either refused, or every event, header, stream, state key and fired timer
//! reads in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_batch::InputView;

fuzz_target!(|data: &[u8]| {
    let Ok(view) = InputView::parse(data) else {
        return;
    };
    let mut touched = 0usize;
    for e in view.events() {
        assert!(
            (e.stream as usize) < view.streams_len(),
            "stream {}",
            e.stream
        );
        touched += view.stream(e.stream).len();
        touched += e.key.map_or(0, <[u8]>::len) + e.value.len();
        for (name, value) in e.headers {
            touched += name.len() + value.len();
        }
        if let Some(k) = e.state_key {
            assert!(view.is_keyed());
            assert!(view.key(k).is_some(), "state key {k}");
        }
    }
    assert_eq!(view.events().count(), view.len());
    for i in 0..view.len() {
        assert!(view.event(i).is_some());
    }
    assert!(view.event(view.len()).is_none());
    for k in view.keys() {
        touched += k.key.len() + k.state.map_or(0, <[u8]>::len);
    }
    for t in view.fired() {
        assert!(view.key(t.key).is_some(), "fired timer key {}", t.key);
    }
    std::hint::black_box((touched, view.watermark()));
});
