//! How a version's instances are started: the `Launch` the supervisor gets, with `run.env`'s
//! `${{ secrets.NAME }}` resolved from the secret store each time (deploy, replace, re-adopt).

use std::collections::BTreeMap;
use std::path::Path;

use mobius_deploy::rollout::Deployed;
use mobius_deploy::spec::ServiceSpec;
use mobius_deploy::supervisor::Launch;

use crate::{DeployError, Deployer, release};

impl Deployer {
    /// How to start `deployed`'s instances in `environment`, with `run.env`'s secrets put in.
    pub(crate) async fn launch(
        &self,
        spec: &ServiceSpec,
        environment: &str,
        deployed: &Deployed,
    ) -> Result<Launch, DeployError> {
        Ok(Launch {
            service: spec.name().to_owned(),
            environment: environment.to_owned(),
            version: deployed.version.clone(),
            workdir: self.local_release(Path::new(&deployed.release)).await?,
            command: spec.run.command.value.clone(),
            args: spec.run.args.clone(),
            env: self.instance_env(spec, None, environment).await?,
            port_env: spec.run.port_env.clone(),
            health_path: spec.run.health.value.clone(),
            readiness_timeout: spec.run.readiness_timeout.0,
            shutdown_grace: spec.run.shutdown_grace.0,
            log_dir: release::log_dir(&self.inner.config.data_dir, spec.name(), environment),
        })
    }

    /// `run.env` for instances in `environment`, each `${{ secrets.NAME }}` replaced by the
    /// secret of the spec's repository (the environment's over the repository's), read now:
    /// the values live only in the instances' environment. With `text` (the release's
    /// mobius.yaml) a missing secret is named at its line.
    pub(crate) async fn instance_env(
        &self,
        spec: &ServiceSpec,
        text: Option<&str>,
        environment: &str,
    ) -> Result<BTreeMap<String, String>, DeployError> {
        use mobius_deploy::secret_refs;
        let env = spec.run.env.clone();
        if secret_refs::referenced_names(&env).is_empty() {
            return Ok(env);
        }
        // The spec was checked: a reference comes with a repository.
        let repository = spec.repository.clone().unwrap_or_default();
        let stored = match &self.inner.config.secrets {
            None => None,
            Some(secrets) => {
                let (secrets, name) = (secrets.clone(), repository.clone());
                let opened = mobius_log::blocking::spawn(move || secrets.for_repository(&name)).await;
                Some(opened.map_err(|source| DeployError::Secrets { repository: repository.clone(), source })?)
            }
        };
        let mut visible = stored.as_ref().map(|s| s.repository.clone()).unwrap_or_default();
        if let Some(scoped) = stored.as_ref().and_then(|s| s.environments.get(environment)) {
            visible.extend(scoped.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        secret_refs::resolve(&env, &visible).map_err(|missing| {
            let at = text
                .map(|text| {
                    let (line, column) = secret_refs::position(text, &missing.variable);
                    format!("mobius.yaml:{line}:{column}: ")
                })
                .unwrap_or_default();
            DeployError::MissingSecret(format!(
                "{at}`run.env.{}` uses secret `{}`, which is not set for {repository} in {environment} \
                 (`mobius secret set {} --repo {repository} [--environment {environment}]`)",
                missing.variable, missing.secret, missing.secret
            ))
        })
    }
}
