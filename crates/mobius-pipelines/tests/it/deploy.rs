//! `mobius/deploy` and `mobius/policy-check` through the `Deployments` port: a small
//! implementation that records the requests and answers as a server would (progress lines,
//! then an outcome or a refusal).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mobius_pipelines::engine::{
    self, DeployError, DeployFuture, DeployOutcome, DeployProgress, DeployStep, Deployments, NO_SERVER, PolicyError,
    PolicyFuture, PolicyStep, RecordingObserver, RolloutEnded, RunOptions, RunReport, Status,
};
use mobius_pipelines::workflow;

/// Deploys nothing; records every request and answers after a few progress lines, with a
/// rollout that failed for the reason in `refuse` when it is set; the policy refuses when
/// `frozen` is set.
#[derive(Debug, Default)]
struct Recorded {
    calls: Mutex<Vec<DeployStep>>,
    refuse: Option<String>,
    checks: Mutex<Vec<PolicyStep>>,
    frozen: Option<String>,
}

impl Deployments for Recorded {
    fn deploy(&self, request: DeployStep, progress: DeployProgress) -> DeployFuture {
        self.calls.lock().unwrap().push(request.clone());
        let refuse = self.refuse.clone();
        Box::pin(async move {
            progress.line(format!("rollout 7: {} {} to {}", request.service, "v1", request.environment));
            tokio::time::sleep(Duration::from_millis(20)).await;
            progress.line("rollout 7: 2 instance(s) healthy");
            match refuse {
                Some(message) => Err(DeployError::from(RolloutEnded {
                    rollout: 7,
                    service: request.service,
                    version: "v1".to_owned(),
                    environment: request.environment,
                    phase: "failed".to_owned(),
                    message,
                })),
                None => Ok(DeployOutcome {
                    summary: format!("rollout 7 of {} to {} succeeded", request.service, request.environment),
                    outputs: BTreeMap::from([("rollout-id".to_owned(), "7".to_owned())]),
                }),
            }
        })
    }

    fn check_policy(&self, request: PolicyStep) -> PolicyFuture {
        self.checks.lock().unwrap().push(request);
        let answer = self.frozen.clone().map_or(Ok(String::new()), |message| Err(PolicyError::Refused { message }));
        Box::pin(async move { answer })
    }
}

const PIPELINE: &str = r#"
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      digest: ${{ steps.upload.outputs.artifact-digest }}
    steps:
      - run: mkdir dist && echo app > dist/app.txt && test "$BREAK" != yes
        env:
          BREAK: ${{ github.ref == 'refs/heads/broken' && 'yes' || 'no' }}
      - id: upload
        uses: actions/upload-artifact@v4
        with:
          name: dist
          path: dist
  deploy:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - id: deploy
        uses: mobius/deploy@v1
        with:
          service: shop
          environment: staging
          artifact: ${{ needs.build.outputs.digest }}
          version: v-${{ github.sha }}
      - run: echo "deployed as rollout ${{ steps.deploy.outputs.rollout-id }}"
      - if: failure()
        run: echo "the deployment failed"
"#;

async fn run(deployments: Option<Arc<dyn Deployments>>, reference: &str) -> (RunReport, RecordingObserver) {
    assert!(workflow::lint("ci.yml", PIPELINE).is_empty(), "{:?}", workflow::lint("ci.yml", PIPELINE));
    let workflow = workflow::parse("ci.yml", PIPELINE).expect("valid workflow");
    let work = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new(work.path(), work.path());
    opts.github = serde_json::json!({ "repository": "acme/shop", "sha": "abc123", "ref": reference });
    opts.deployments = deployments;
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    (report, observer)
}

fn steps(report: &RunReport, job: &str) -> Vec<Status> {
    report.jobs.iter().find(|j| j.id == job).expect("job").steps.iter().map(|s| s.conclusion).collect()
}

/// The step asks for the deployment of the artifact the needed job uploaded, logs the
/// progress, and its outputs reach later steps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploys_the_uploaded_artifact_after_the_build() {
    let recorded = Arc::new(Recorded::default());
    let (report, observer) = run(Some(recorded.clone()), "refs/heads/main").await;
    assert_eq!(report.result, Status::Success, "{:?}", observer.log_text());
    let upload = &report.jobs[0].steps[1];
    let digest = upload.outputs["artifact-digest"].clone();
    assert!(digest.starts_with("sha256:"), "{digest}");
    let calls = recorded.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        [DeployStep {
            service: "shop".into(),
            environment: "staging".into(),
            artifact: digest.clone(),
            version: Some("v-abc123".into())
        }]
    );
    let log = observer.log_text();
    for line in [
        format!("deploying shop to staging from artifact {digest}").as_str(),
        "rollout 7: shop v1 to staging",
        "rollout 7: 2 instance(s) healthy",
        "rollout 7 of shop to staging succeeded",
        "deployed as rollout 7",
    ] {
        assert!(log.contains(&line), "no `{line}` in {log:?}");
    }
    assert_eq!(steps(&report, "deploy"), [Status::Success, Status::Success, Status::Skipped]);
    assert_eq!(report.jobs[1].steps[0].outputs["rollout-id"], "7");
}

/// A failed build skips the deploy job: nothing is deployed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_build_deploys_nothing() {
    let recorded = Arc::new(Recorded::default());
    let (report, _) = run(Some(recorded.clone()), "refs/heads/broken").await;
    assert_eq!(report.result, Status::Failure);
    assert_eq!(report.jobs[1].result, Status::Skipped);
    assert!(recorded.calls.lock().unwrap().is_empty());
}

/// A refused (or failed) deployment fails the step, so the job and the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_deployment_fails_the_step() {
    let refuse = Some("not healthy within 5 s".to_owned());
    let recorded = Arc::new(Recorded { refuse, ..Recorded::default() });
    let (report, observer) = run(Some(recorded.clone()), "refs/heads/main").await;
    assert_eq!(report.result, Status::Failure);
    assert_eq!(steps(&report, "deploy"), [Status::Failure, Status::Skipped, Status::Success]);
    let log = observer.log_text();
    assert!(log.contains(&"rollout 7: 2 instance(s) healthy"), "{log:?}");
    assert!(
        log.contains(&"mobius/deploy failed: rollout 7 of shop v1 to staging ended failed: not healthy within 5 s"),
        "{log:?}"
    );
}

/// Without a server to deploy to, the step says how to get one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_the_step_fails_clearly() {
    let (report, observer) = run(None, "refs/heads/main").await;
    assert_eq!(report.result, Status::Failure);
    assert_eq!(steps(&report, "deploy"), [Status::Failure, Status::Skipped, Status::Success]);
    assert!(observer.log_text().contains(&NO_SERVER), "{:?}", observer.log_text());
}

/// A rollout that never ends.
#[derive(Debug)]
struct Endless;

impl Deployments for Endless {
    fn deploy(&self, _request: DeployStep, progress: DeployProgress) -> DeployFuture {
        Box::pin(async move {
            progress.line("rollout 1: paused: waiting for approval");
            std::future::pending().await
        })
    }

    fn check_policy(&self, _request: PolicyStep) -> PolicyFuture {
        Box::pin(std::future::pending())
    }
}

/// A job that times out while its step waits stops waiting (the rollout is the server's). The
/// job's timeout is a tokio timer and the step does no I/O while it waits, so the test runs on
/// paused time: the run ending at all is the proof that the step stopped waiting.
#[tokio::test(start_paused = true)]
async fn a_cancelled_job_stops_waiting_for_the_rollout() {
    let digest = format!("sha256:{}", "0a".repeat(32));
    let yaml = format!(
        "on: push\njobs:\n  deploy:\n    timeout-minutes: 0.01\n    steps:\n      - uses: mobius/deploy@v1\n        with: {{service: shop, environment: production, artifact: '{digest}'}}\n"
    );
    let workflow = workflow::parse("ci.yml", &yaml).expect("valid workflow");
    let work = tempfile::tempdir().expect("temp dir");
    let mut opts = RunOptions::new(work.path(), work.path());
    opts.deployments = Some(Arc::new(Endless));
    let mut observer = RecordingObserver::default();
    let report = engine::run(&workflow, opts, &mut observer).await;
    assert_eq!(report.jobs[0].result, Status::Failure, "a timed-out job fails");
    assert_eq!(report.jobs[0].steps[0].outcome, Status::Cancelled);
    let log = observer.log_text();
    assert!(log.contains(&"rollout 1: paused: waiting for approval"), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("cancelled: stopped waiting for the rollout")), "{log:?}");
}

const GATED: &str = r#"
on: push
jobs:
  release:
    steps:
      - id: policy
        uses: mobius/policy-check@v1
        with:
          service: shop
      - run: echo "policy says ${{ steps.policy.outputs.allowed }}"
      - uses: mobius/deploy@v1
        with: {service: shop, environment: production, artifact: 'sha256:0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a'}
"#;

/// `mobius/policy-check` asks the error-budget policy about production by default: a frozen
/// budget fails the step, so nothing after it deploys; an open one lets the job go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_check_step_stops_the_job_when_the_budget_is_frozen() {
    assert!(workflow::lint("ci.yml", GATED).is_empty(), "{:?}", workflow::lint("ci.yml", GATED));
    let workflow = workflow::parse("ci.yml", GATED).expect("valid workflow");
    for frozen in [Some("error budget exhausted: -20% left (99.9% over 30d)".to_owned()), None] {
        let recorded = Arc::new(Recorded { frozen: frozen.clone(), ..Recorded::default() });
        let work = tempfile::tempdir().expect("temp dir");
        let mut opts = RunOptions::new(work.path(), work.path());
        opts.deployments = Some(recorded.clone());
        let mut observer = RecordingObserver::default();
        let report = engine::run(&workflow, opts, &mut observer).await;
        let asked = PolicyStep { service: "shop".into(), environment: "production".into(), reason: None };
        assert_eq!(*recorded.checks.lock().unwrap(), [asked]);
        let log = observer.log_text();
        if frozen.is_some() {
            assert_eq!(steps(&report, "release"), [Status::Failure, Status::Skipped, Status::Skipped]);
            assert!(recorded.calls.lock().unwrap().is_empty(), "nothing deployed");
            assert!(
                log.contains(&"mobius/policy-check: error budget exhausted: -20% left (99.9% over 30d)"),
                "{log:?}"
            );
        } else {
            assert_eq!(steps(&report, "release"), [Status::Success; 3], "{log:?}");
            assert!(log.contains(&"policy says true"), "{log:?}");
        }
    }
}

/// Bad inputs are refused by `mobius lint` at their position.
#[test]
fn lint_checks_the_policy_check_inputs() {
    let yaml =
        "on: push\njobs:\n  a:\n    steps:\n      - uses: mobius/policy-check@v1\n        with: {servce: shop}\n";
    let errors: Vec<String> = workflow::lint("ci.yml", yaml).iter().map(ToString::to_string).collect();
    assert!(
        errors.iter().any(|e| e.contains("unknown input `servce`") && e.contains("did you mean `service`")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("needs input `service`")), "{errors:?}");
}
