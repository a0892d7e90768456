//! `${{ secrets.NAME }}` in `mobius.yaml`'s `run.env`: resolved when the instances start, from
//! the secrets of the service's repository and its environment (the environment's winning),
//! never written to the store, the release or Mobius's logs in clear; a secret that is not
//! stored refuses the deploy at its line, before anything changes.

use reqwest::StatusCode;

use crate::deploy::{Cleanup, against, body, finished, free_port};
use crate::stored_secrets::secret;
use crate::util::{ADMIN, Dir, files_holding, http};

const REPOSITORY_VALUE: &str = "repository-level-5150";
const PRODUCTION_VALUE: &str = "production-level-8812";

fn spec(port: u16, secret_name: &str) -> String {
    format!(
        "service: shop\nrepository: acme/shop\nrun:\n  command: mobius\n  args: [sample-app]\n  env:\n    LOG: info\n    \
         SAMPLE_VERSION: \"v-${{{{ secrets.{secret_name} }}}}\"\n  instances: 1\n  readiness_timeout: 10s\n  \
         shutdown_grace: 2s\nenvironments:\n  - name: production\n    listen: 127.0.0.1:{port}\n    strategy: rolling\n"
    )
}

#[test]
fn run_env_secrets_are_resolved_at_start_from_the_environment_and_never_stored_in_clear() {
    let dir = Dir::new();
    let _cleanup = Cleanup(dir.path().to_owned());
    let server = dir.serve(&[]);
    let port = free_port();
    let remote = ["--server", server.base.as_str(), "--token", ADMIN];
    for (args, value) in [
        (vec!["set", "GREETING", "--repo", "acme/shop"], REPOSITORY_VALUE),
        (vec!["set", "GREETING", "--repo", "acme/shop", "--environment", "production"], PRODUCTION_VALUE),
    ] {
        let out = secret(&dir, &[&args[..], &remote[..]].concat(), &format!("{value}\n"));
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    // A secret that is not stored: refused at its line, and nothing deployed.
    let release = dir.path().join("release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(release.join("mobius.yaml"), spec(port, "MISSING")).unwrap();
    let out = against(&dir, &server, ADMIN, &["deploy", "shop", "production", "--dir", release.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(
            "mobius.yaml:8:5: `run.env.SAMPLE_VERSION` uses secret `MISSING`, which is not set for acme/shop in production"
        ),
        "{said}"
    );
    let rollout = http().get(server.url("/api/v1/rollouts/shop/production")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(rollout.status(), StatusCode::NOT_FOUND, "nothing was deployed");

    // A stored one: the instance sees the production environment's value.
    std::fs::write(release.join("mobius.yaml"), spec(port, "GREETING")).unwrap();
    let out = against(&dir, &server, ADMIN, &["deploy", "shop", "production", "--dir", release.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rollout = finished(&server);
    assert_eq!(rollout["phase"], "succeeded", "{rollout:#}");
    assert_eq!(body(port), format!("hello from v-{PRODUCTION_VALUE}"));
    let kept = std::path::Path::new(rollout["new"]["release"].as_str().unwrap()).join("mobius.yaml");
    let kept = std::fs::read_to_string(kept).unwrap();
    assert!(kept.contains("${{ secrets.GREETING }}"), "the release keeps the reference: {kept}");

    // The values are in no file Mobius writes (database, WAL, releases, the key file's
    // neighbours). The instance's own output is the service's: the sample app prints its
    // version, so its log under `deploy/` has it, as any log a service writes would.
    let instance_logs = dir.data().join("deploy/shop/production/logs");
    for value in [PRODUCTION_VALUE, REPOSITORY_VALUE] {
        let found: Vec<String> = files_holding(&dir.data(), value)
            .into_iter()
            .filter(|p| !std::path::Path::new(p).starts_with(&instance_logs))
            .collect();
        assert_eq!(found, Vec::<String>::new(), "{value} in clear");
    }
    assert_eq!(files_holding(&dir.data(), REPOSITORY_VALUE), Vec::<String>::new());
}
