//! Transitions of the rollout state machine, one strategy at a time.

use super::*;
use crate::analysis::{Check, Verdict};

fn spec(strategy: &str) -> ServiceSpec {
    let text = format!(
        "service: shop\nrun:\n  command: ./shop\n  instances: 2\nenvironments:\n  - name: production\n    listen: 127.0.0.1:9\n    strategy: {strategy}\n"
    );
    ServiceSpec::parse("mobius.yaml", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn deployed(version: &str, n: u16) -> Deployed {
    Deployed {
        version: version.into(),
        release: format!("/releases/{version}"),
        artifact: None,
        revision: None,
        instances: (0..n)
            .map(|i| Instance {
                version: version.into(),
                index: u32::from(i),
                pid: 100 + u32::from(i),
                addr: ([127, 0, 0, 1], 9000 + i).into(),
                log: "/dev/null".into(),
                started_at: Timestamp::UNIX_EPOCH,
            })
            .collect(),
    }
}

fn rollout(strategy: &str) -> Rollout {
    let spec = spec(strategy);
    let env = spec.environment("production").unwrap();
    let plan = Plan::for_environment(&spec, env).unwrap();
    Rollout::new("shop", env, plan, 2, Some(deployed("v1", 2)), deployed("v2", 0), Timestamp::UNIX_EPOCH)
}

fn measurement(verdict: Verdict) -> Measurement {
    Measurement {
        verdict,
        checks: vec![Check {
            name: "error_rate".into(),
            value: Some(0.0),
            threshold: 0.01,
            passed: verdict != Verdict::Fail,
        }],
        mann_whitney: None,
    }
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

#[test]
fn a_canary_walks_its_steps_pauses_and_is_promoted() {
    let mut r = rollout(
        "{canary: {steps: [{set_weight: 10}, {pause: {duration: 5s}}, {analysis: {count: 1}}, {set_weight: 50}, {pause: {}}]}}",
    );
    assert_eq!(next(&r, t(0)), Action::StartNew { count: 2 });
    r.started(t(1), deployed("v2", 2).instances);
    assert_eq!(next(&r, t(1)), Action::SetWeight(10));
    r.weight_set(t(1), 10);
    advance_pauses(&mut r, t(1));
    assert_eq!(next(&r, t(2)), Action::Wait { until: Some(t(6)) });
    advance_pauses(&mut r, t(6));
    assert_eq!(next(&r, t(6)), Action::Measure);
    let spec = match &r.plan {
        Plan::Canary { steps } => match &steps[2] {
            PlanStep::Analysis(a) => a.clone(),
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    r.begin_analysis(t(6), spec, serde_json::Value::Null);
    assert!(matches!(next(&r, t(7)), Action::Wait { until: Some(_) }));
    r.measured(t(20), measurement(Verdict::Pass), serde_json::Value::Null);
    assert_eq!(next(&r, t(20)), Action::SetWeight(50));
    r.weight_set(t(20), 50);
    advance_pauses(&mut r, t(20));
    assert_eq!(r.phase, Phase::Paused);
    assert_eq!(next(&r, t(21)), Action::Wait { until: None });
    r.promote(t(22)).unwrap();
    assert_eq!(next(&r, t(22)), Action::Promote);
    r.promoted(t(22));
    assert_eq!(next(&r, t(22)), Action::RetireOld);
    r.retired(t(22));
    assert_eq!((r.phase, next(&r, t(23))), (Phase::Succeeded, Action::Done));
    assert!(matches!(r.promote(t(24)), Err(ChangeRefused::NotPaused { phase: "succeeded", .. })));
}

#[test]
fn a_failed_analysis_aborts_and_an_inconclusive_one_pauses() {
    let mut r = rollout("{canary: {steps: [{set_weight: 20}, {analysis: {}}]}}");
    r.started(t(1), deployed("v2", 2).instances);
    r.weight_set(t(1), 20);
    r.begin_analysis(t(1), AnalysisSpec::default(), serde_json::Value::Null);
    r.measured(t(11), measurement(Verdict::Fail), serde_json::Value::Null);
    assert!(matches!(next(&r, t(11)), Action::Abort { .. }), "{:?}", next(&r, t(11)));
    r.aborted(t(11), "analysis failed");
    assert_eq!((r.phase, r.weight, next(&r, t(12))), (Phase::Aborted, 0, Action::Done));

    let mut r = rollout("{canary: {steps: [{set_weight: 20}, {analysis: {max_inconclusive: 0}}]}}");
    r.started(t(1), deployed("v2", 2).instances);
    r.weight_set(t(1), 20);
    let spec = AnalysisSpec { max_inconclusive: 0, ..AnalysisSpec::default() };
    r.begin_analysis(t(1), spec, serde_json::Value::Null);
    r.measured(t(11), measurement(Verdict::Inconclusive), serde_json::Value::Null);
    assert_eq!(r.phase, Phase::Paused, "a human decides: {}", r.message);
    assert!(r.request_abort(t(12), "by hand").is_ok());
    assert_eq!(next(&r, t(12)), Action::Abort { reason: "by hand".into() });
}

#[test]
fn an_abort_requested_at_an_indefinite_pause_aborts() {
    let mut r = rollout("{canary: {steps: [{set_weight: 50}, {pause: {}}]}}");
    r.started(t(1), deployed("v2", 2).instances);
    r.weight_set(t(1), 50);
    advance_pauses(&mut r, t(2));
    assert_eq!(r.phase, Phase::Paused);
    assert!(r.request_abort(t(3), "aborted by hand").is_ok());
    // The controller's next tick: the pause must not swallow the request.
    advance_pauses(&mut r, t(3));
    assert_eq!(next(&r, t(3)), Action::Abort { reason: "aborted by hand".into() });
}

#[test]
fn rolling_replaces_one_at_a_time_and_blue_green_keeps_the_old_version_warm() {
    let mut r = rollout("rolling");
    assert_eq!(next(&r, t(0)), Action::ReplaceOne { index: 0 });
    let old = r.stable.as_ref().unwrap().instances[0].clone();
    r.replaced(t(1), deployed("v2", 1).instances[0].clone(), Some(old));
    assert_eq!((r.weight, next(&r, t(1))), (50, Action::ReplaceOne { index: 1 }));
    let old = r.stable.as_ref().unwrap().instances[0].clone();
    r.replaced(t(2), deployed("v2", 2).instances[1].clone(), Some(old));
    assert_eq!(next(&r, t(2)), Action::Promote);

    let mut r = rollout("{blue_green: {scale_down_delay: 30s}}");
    assert_eq!(next(&r, t(0)), Action::StartNew { count: 2 });
    r.started(t(1), deployed("v2", 2).instances);
    assert_eq!(next(&r, t(1)), Action::SetWeight(100));
    r.weight_set(t(1), 100);
    assert_eq!(next(&r, t(1)), Action::Promote);
    r.promoted(t(1));
    assert!(r.old_is_warm());
    assert_eq!(next(&r, t(2)), Action::Wait { until: Some(t(31)) });
    assert_eq!(next(&r, t(31)), Action::RetireOld);
}

#[test]
fn a_first_deployment_starts_and_promotes_and_manual_approval_waits() {
    let spec = spec("rolling");
    let env = spec.environment("production").unwrap();
    let mut r = Rollout::new("shop", env, Plan::Rolling, 1, None, deployed("v1", 0), t(0));
    assert_eq!(next(&r, t(0)), Action::StartNew { count: 1 });
    r.started(t(1), deployed("v1", 1).instances);
    assert_eq!(next(&r, t(1)), Action::Promote);
    r.promoted(t(1));
    assert_eq!((r.phase, next(&r, t(1))), (Phase::Succeeded, Action::Done));

    let manual = ServiceSpec::parse(
        "mobius.yaml",
        "service: shop\nrun:\n  command: x\nenvironments:\n  - name: production\n    listen: 127.0.0.1:9\n    approval: manual\n",
    )
    .unwrap();
    let env = manual.environment("production").unwrap();
    let mut r = Rollout::new("shop", env, Plan::Rolling, 1, None, deployed("v1", 0), t(0));
    assert_eq!((r.phase, next(&r, t(0))), (Phase::Pending, Action::Wait { until: None }));
    r.promote(t(1)).unwrap();
    assert_eq!(next(&r, t(1)), Action::StartNew { count: 1 });
}
