use std::cell::RefCell;
use std::rc::Rc;

use weir_sdk::infer::{InferError, Tensor, set_native_handler};
use weir_sdk::serde_json::{self, Value};
use weir_sdk::{Event, Output};

use super::*;

fn txn(amount: f64, category: &str) -> Event {
    Event::new(format!(
        r#"{{"txn_id":"t1","amount":{amount},"channel":"pos","country":"US","home_country":"US","hour":12,"secs_since_last":5000,"merchant_category":"{category}","is_fraud":0}}"#
    ))
}

/// A stand-in model: score = amount / 1000 (read back from the log-amount
/// feature), recording every call's model name and shape.
/// Every call: the model name and the input's shape.
type Calls = Rc<RefCell<Vec<(String, Vec<usize>)>>>;

fn install_model(calls: Calls) {
    set_native_handler(move |model, inputs| {
        calls
            .borrow_mut()
            .push((model.to_owned(), inputs[0].shape()));
        if model != "fraud" {
            return Err(InferError::UnknownModel(model.to_owned()));
        }
        let x = inputs[0]
            .as_f32()
            .ok_or_else(|| InferError::InvalidInput("not f32".into()))?;
        let rows = inputs[0].rows();
        let scores = (0..rows)
            .map(|r| ((x[r * FEATURES] as f64).exp_m1() / 1000.0) as f32)
            .collect();
        Ok(vec![Tensor::f32("score", [rows, 1], scores)])
    });
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(out.event().value()).unwrap()
}

#[test]
fn one_call_per_batch_scores_appended_alerts_copied() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    install_model(calls.clone());
    let events = vec![
        txn(100.0, "grocery"),
        txn(900.0, "electronics"),
        txn(250.0, "travel"),
    ];
    let results = score(events, &Params::default());
    assert_eq!(
        *calls.borrow(),
        vec![("fraud".to_owned(), vec![3, FEATURES])]
    );
    assert_eq!(results.len(), 3);
    let expected = [(100.0, false), (900.0, true), (250.0, false)];
    for (result, (amount, alert)) in results.into_iter().zip(expected) {
        let outs = result.unwrap();
        assert_eq!(outs.len(), if alert { 2 } else { 1 });
        assert_eq!(outs[0].route(), None);
        let v = json(&outs[0]);
        assert_eq!(v["amount"], amount);
        assert_eq!(v["txn_id"], "t1", "other fields are kept");
        let s = v["score"].as_f64().unwrap();
        assert!((s - amount / 1000.0).abs() < 1e-4, "score {s} for {amount}");
        if alert {
            assert_eq!(outs[1].route(), Some("alerts"));
            assert_eq!(outs[1].event().value(), outs[0].event().value());
        }
    }
}

#[test]
fn threshold_and_model_come_from_params() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    install_model(calls.clone());
    let params = Params {
        threshold: 0.05,
        route: "review".to_owned(),
        ..Params::default()
    };
    let results = score(vec![txn(100.0, "grocery"), txn(10.0, "fuel")], &params);
    let outs: Vec<_> = results.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(outs[0].len(), 2);
    assert_eq!(outs[0][1].route(), Some("review"));
    assert_eq!(outs[1].len(), 1);

    let other = Params {
        model: "other".to_owned(),
        ..Params::default()
    };
    let results = score(vec![txn(1.0, "fuel"), txn(2.0, "fuel")], &other);
    assert_eq!(calls.borrow().last().unwrap().0, "other");
    for r in results {
        let msg = r.unwrap_err().message().to_owned();
        assert_eq!(msg, "model `other`: no model named `other` in the pipeline");
    }
}

#[test]
fn bad_events_error_alone_and_are_not_sent_to_the_model() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    install_model(calls.clone());
    let events = vec![
        txn(100.0, "grocery"),
        Event::new("not json"),
        Event::new(r#"{"amount":5}"#),
        txn(700.0, "retail"),
    ];
    let results = score(events, &Params::default());
    assert_eq!(calls.borrow()[0].1, vec![2, FEATURES]);
    assert!(results[0].is_ok());
    let e1 = results[1].as_ref().unwrap_err().message();
    assert!(e1.starts_with("not a card transaction"), "{e1}");
    let e2 = results[2].as_ref().unwrap_err().message();
    assert!(e2.contains("missing field"), "{e2}");
    let last = results[3].as_ref().unwrap();
    assert_eq!(last.len(), 2);
    let s = json(&last[0])["score"].as_f64().unwrap();
    assert!((s - 0.7).abs() < 1e-4);
}

#[test]
fn a_failed_model_call_fails_every_event_with_the_reason() {
    set_native_handler(|_, _| Err(InferError::Unavailable("shutting down".into())));
    let results = score(
        vec![txn(1.0, "fuel"), Event::new("{}"), txn(2.0, "fuel")],
        &Params::default(),
    );
    let msgs: Vec<String> = results
        .iter()
        .map(|r| r.as_ref().unwrap_err().message().to_owned())
        .collect();
    assert_eq!(
        msgs[0],
        "model `fraud`: inference unavailable: shutting down"
    );
    assert!(
        msgs[1].contains("missing field"),
        "its own error wins: {}",
        msgs[1]
    );
    assert_eq!(msgs[2], msgs[0]);
}

#[test]
fn a_wrong_output_shape_fails_the_batch() {
    set_native_handler(|_, _| Ok(vec![Tensor::f32("score", [1, 1], vec![0.5])]));
    let results = score(vec![txn(1.0, "fuel"), txn(2.0, "fuel")], &Params::default());
    for r in results {
        let msg = r.unwrap_err().message().to_owned();
        assert_eq!(
            msg,
            "model `fraud`: 1 scores for 2 rows (expected shape [N, 1])"
        );
    }
}

#[test]
fn an_all_bad_batch_makes_no_call() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    install_model(calls.clone());
    let results = score(vec![Event::new("[]")], &Params::default());
    assert!(results[0].is_err());
    assert!(calls.borrow().is_empty());
    assert!(score(Vec::new(), &Params::default()).is_empty());
}

#[test]
fn score_is_inserted_before_the_closing_brace() {
    let mut v = b"{\"a\":1}\n".to_vec();
    append_score(&mut v, 0.25).unwrap();
    assert_eq!(v, b"{\"a\":1,\"score\":0.25}");
}

#[test]
fn params_are_checked() {
    assert!(check(Params::default()).is_ok());
    let bad = Params {
        threshold: 1.5,
        ..Params::default()
    };
    assert_eq!(
        check(bad).unwrap_err().message(),
        "threshold must be in [0, 1], got 1.5"
    );
}
