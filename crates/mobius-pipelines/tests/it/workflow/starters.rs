//! The starter-workflow corpus: every file parsed and validated, or rejected precisely.

use std::path::{Path, PathBuf};

use mobius_pipelines::workflow::{self, Severity};

fn corpus_dir() -> std::path::PathBuf {
    crate::shared_corpus().join("starter-workflows")
}
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/workflows");

/// What Mobius does with a starter workflow.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Parses with no lint error.
    Runnable,
    /// Parses with no lint error, and the first action that is not built in is this one: it
    /// is fetched from its repository (`--actions-url`, GitHub by default) when the job runs.
    /// Whether it then runs depends on the action (JavaScript and composite ones do; a Docker
    /// action fails its job) and, for most of these, on reaching a cloud service.
    Fetches(&'static str),
    /// Parses; the first lint error names `container` or `services`.
    Unsupported(&'static str),
    /// Not YAML. None of this corpus snapshot is: both serde-saphyr and PyYAML load all 82
    /// files, so the variant is exercised by `tests/fixtures/workflows/invalid-*.yml`.
    #[allow(dead_code)]
    InvalidYaml,
}
use Outcome::*;

/// Every file of the corpus (path relative to it), its outcome and why.
const STARTERS: &[(&str, Outcome, &str)] = &[
    ("ci/ada.yml", Runnable, "run steps and built-in actions only"),
    ("ci/android.yml", Runnable, "run steps and built-in actions only"),
    ("ci/ant.yml", Runnable, "run steps and built-in actions only"),
    ("ci/blank.yml", Runnable, "run steps and built-in actions only"),
    ("ci/c-cpp.yml", Runnable, "run steps and built-in actions only"),
    ("ci/clojure.yml", Runnable, "run steps and built-in actions only"),
    ("ci/cmake-multi-platform.yml", Runnable, "run steps and built-in actions only"),
    ("ci/cmake-single-platform.yml", Runnable, "run steps and built-in actions only"),
    ("ci/crystal.yml", Unsupported("container"), "the job needs Docker (`container:`)"),
    (
        "ci/d.yml",
        Fetches("dlang-community/setup-dlang"),
        "`dlang-community/setup-dlang` is fetched from its repository when the job runs",
    ),
    (
        "ci/dart.yml",
        Fetches("dart-lang/setup-dart"),
        "`dart-lang/setup-dart` is fetched from its repository when the job runs",
    ),
    (
        "ci/datadog-synthetics.yml",
        Fetches("DataDog/synthetics-ci-github-action"),
        "`DataDog/synthetics-ci-github-action` is fetched from its repository when the job runs",
    ),
    (
        "ci/deno.yml",
        Fetches("denoland/setup-deno"),
        "`denoland/setup-deno` is fetched from its repository when the job runs",
    ),
    ("ci/django.yml", Runnable, "run steps and built-in actions only"),
    ("ci/docker-image.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/docker-publish.yml",
        Fetches("sigstore/cosign-installer"),
        "`sigstore/cosign-installer` is fetched from its repository when the job runs",
    ),
    (
        "ci/dotnet-desktop.yml",
        Fetches("actions/setup-dotnet"),
        "`actions/setup-dotnet` is fetched from its repository when the job runs",
    ),
    (
        "ci/dotnet.yml",
        Fetches("actions/setup-dotnet"),
        "`actions/setup-dotnet` is fetched from its repository when the job runs",
    ),
    (
        "ci/elixir.yml",
        Fetches("erlef/setup-beam"),
        "`erlef/setup-beam` is fetched from its repository when the job runs",
    ),
    ("ci/erlang.yml", Unsupported("container"), "the job needs Docker (`container:`)"),
    (
        "ci/gem-push.yml",
        Fetches("ruby/setup-ruby"),
        "`ruby/setup-ruby` is fetched from its repository when the job runs",
    ),
    ("ci/generator-generic-ossf-slsa3-publish.yml", Runnable, "a job calls a remote reusable workflow"),
    ("ci/go-ossf-slsa3-publish.yml", Runnable, "a job calls a remote reusable workflow"),
    ("ci/go.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/gradle-publish.yml",
        Fetches("gradle/actions/setup-gradle"),
        "`gradle/actions/setup-gradle` is fetched from its repository when the job runs",
    ),
    (
        "ci/gradle.yml",
        Fetches("gradle/actions/setup-gradle"),
        "`gradle/actions/setup-gradle` is fetched from its repository when the job runs",
    ),
    (
        "ci/haskell.yml",
        Fetches("actions/setup-haskell"),
        "`actions/setup-haskell` is fetched from its repository when the job runs",
    ),
    ("ci/ios.yml", Runnable, "run steps and built-in actions only"),
    ("ci/jekyll-docker.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/laravel.yml",
        Fetches("shivammathur/setup-php"),
        "`shivammathur/setup-php` is fetched from its repository when the job runs",
    ),
    ("ci/makefile.yml", Runnable, "run steps and built-in actions only"),
    ("ci/maven-publish.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/maven.yml",
        Fetches("advanced-security/maven-dependency-submission-action"),
        "`advanced-security/maven-dependency-submission-action` is fetched from its repository when the job runs",
    ),
    (
        "ci/msbuild.yml",
        Fetches("microsoft/setup-msbuild"),
        "`microsoft/setup-msbuild` is fetched from its repository when the job runs",
    ),
    ("ci/node.js.yml", Runnable, "run steps and built-in actions only"),
    ("ci/npm-publish-github-packages.yml", Runnable, "run steps and built-in actions only"),
    ("ci/npm-publish.yml", Runnable, "run steps and built-in actions only"),
    ("ci/objective-c-xcode.yml", Runnable, "run steps and built-in actions only"),
    ("ci/php.yml", Runnable, "run steps and built-in actions only"),
    ("ci/pylint.yml", Runnable, "run steps and built-in actions only"),
    ("ci/python-app.yml", Runnable, "run steps and built-in actions only"),
    ("ci/python-package-conda.yml", Runnable, "run steps and built-in actions only"),
    ("ci/python-package.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/python-publish.yml",
        Fetches("pypa/gh-action-pypi-publish"),
        "`pypa/gh-action-pypi-publish` is fetched from its repository when the job runs",
    ),
    (
        "ci/r.yml",
        Fetches("r-lib/actions/setup-r"),
        "`r-lib/actions/setup-r` is fetched from its repository when the job runs",
    ),
    ("ci/ruby.yml", Fetches("ruby/setup-ruby"), "`ruby/setup-ruby` is fetched from its repository when the job runs"),
    ("ci/rubyonrails.yml", Unsupported("services"), "the job needs Docker (`services:`)"),
    ("ci/rust.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/scala.yml",
        Fetches("scalacenter/sbt-dependency-submission"),
        "`scalacenter/sbt-dependency-submission` is fetched from its repository when the job runs",
    ),
    (
        "ci/super-linter.yml",
        Fetches("github/super-linter"),
        "`github/super-linter` is fetched from its repository when the job runs",
    ),
    ("ci/swift.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/symfony.yml",
        Fetches("shivammathur/setup-php"),
        "`shivammathur/setup-php` is fetched from its repository when the job runs",
    ),
    ("ci/webpack.yml", Runnable, "run steps and built-in actions only"),
    (
        "deployments/alibabacloud.yml",
        Fetches("aliyun/acr-login"),
        "`aliyun/acr-login` is fetched from its repository when the job runs",
    ),
    (
        "deployments/aws.yml",
        Fetches("aws-actions/configure-aws-credentials"),
        "`aws-actions/configure-aws-credentials` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-container-webapp.yml",
        Fetches("docker/setup-buildx-action"),
        "`docker/setup-buildx-action` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-functions-app-container.yml",
        Fetches("azure/login"),
        "`azure/login` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-functions-app-dotnet.yml",
        Fetches("actions/setup-dotnet"),
        "`actions/setup-dotnet` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-functions-app-java-gradle.yml",
        Fetches("Azure/functions-action"),
        "`Azure/functions-action` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-functions-app-java.yml",
        Fetches("Azure/functions-action"),
        "`Azure/functions-action` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-functions-app-nodejs.yml",
        Fetches("Azure/functions-action"),
        "`Azure/functions-action` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-functions-app-powershell.yml",
        Fetches("Azure/functions-action"),
        "`Azure/functions-action` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-functions-app-python.yml",
        Fetches("Azure/functions-action"),
        "`Azure/functions-action` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-kubernetes-service-helm.yml",
        Fetches("azure/login"),
        "`azure/login` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-kubernetes-service-kompose.yml",
        Fetches("azure/login"),
        "`azure/login` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-kubernetes-service-kustomize.yml",
        Fetches("azure/login"),
        "`azure/login` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-kubernetes-service.yml",
        Fetches("azure/login"),
        "`azure/login` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-staticwebapp.yml",
        Fetches("Azure/static-web-apps-deploy"),
        "`Azure/static-web-apps-deploy` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-webapps-dotnet-core.yml",
        Fetches("actions/setup-dotnet"),
        "`actions/setup-dotnet` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-webapps-java-jar-gradle.yml",
        Fetches("azure/webapps-deploy"),
        "`azure/webapps-deploy` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-webapps-java-jar.yml",
        Fetches("azure/webapps-deploy"),
        "`azure/webapps-deploy` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-webapps-node.yml",
        Fetches("azure/webapps-deploy"),
        "`azure/webapps-deploy` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-webapps-php.yml",
        Fetches("shivammathur/setup-php"),
        "`shivammathur/setup-php` is fetched from its repository when the job runs",
    ),
    (
        "deployments/azure-webapps-python.yml",
        Fetches("azure/webapps-deploy"),
        "`azure/webapps-deploy` is fetched from its repository when the job runs",
    ),
    (
        "deployments/google-cloudrun-docker.yml",
        Fetches("google-github-actions/auth"),
        "`google-github-actions/auth` is fetched from its repository when the job runs",
    ),
    (
        "deployments/google-cloudrun-source.yml",
        Fetches("google-github-actions/auth"),
        "`google-github-actions/auth` is fetched from its repository when the job runs",
    ),
    (
        "deployments/google.yml",
        Fetches("google-github-actions/auth"),
        "`google-github-actions/auth` is fetched from its repository when the job runs",
    ),
    ("deployments/ibm.yml", Runnable, "run steps and built-in actions only"),
    (
        "deployments/octopusdeploy.yml",
        Fetches("docker/setup-buildx-action"),
        "`docker/setup-buildx-action` is fetched from its repository when the job runs",
    ),
    (
        "deployments/openshift.yml",
        Fetches("actions/github-script"),
        "`actions/github-script` is fetched from its repository when the job runs",
    ),
    (
        "deployments/tencent.yml",
        Fetches("TencentCloud/tke-cluster-credential-action"),
        "`TencentCloud/tke-cluster-credential-action` is fetched from its repository when the job runs",
    ),
    (
        "deployments/terraform.yml",
        Fetches("hashicorp/setup-terraform"),
        "`hashicorp/setup-terraform` is fetched from its repository when the job runs",
    ),
];

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

fn outcome_of(path: &str, text: &str) -> Result<Outcome, String> {
    let errors: Vec<_> = workflow::lint(path, text).into_iter().filter(|d| d.severity == Severity::Error).collect();
    let Some(first) = errors.first() else {
        let parsed = workflow::parse(path, text).map_err(|e| format!("{e:?}"))?;
        let fetched = parsed.jobs.iter().flat_map(|j| &j.steps).find_map(|step| match &step.action {
            workflow::StepAction::Uses { action, .. } => {
                let name = action.split('@').next().unwrap_or(action);
                let builtin = workflow::SUPPORTED_ACTIONS.iter().any(|b| b.eq_ignore_ascii_case(name));
                (!builtin).then(|| name.to_owned())
            }
            workflow::StepAction::Run(_) => None,
        });
        return Ok(match fetched {
            Some(name) => match STARTERS.iter().find(|(p, _, _)| *p == path) {
                Some((_, Fetches(n), _)) if *n == name => Fetches(n),
                _ => Fetches(Box::leak(name.into_boxed_str())),
            },
            None => Runnable,
        });
    };
    if first.message.starts_with("invalid YAML") {
        return Ok(InvalidYaml);
    }
    // Only "unsupported" errors are allowed for a starter: anything else is a bug in the
    // parser or in the starter.
    let other: Vec<String> = errors
        .iter()
        .filter(|d| !d.message.starts_with("unsupported action") && !d.message.contains("is not supported"))
        .map(ToString::to_string)
        .collect();
    if !other.is_empty() {
        return Err(other.join("\n"));
    }
    let name = first.message.split('`').nth(1).unwrap_or("");
    let name = name.split('@').next().unwrap_or(name);
    let expected = STARTERS.iter().find(|(p, _, _)| *p == path).map(|(_, o, _)| *o);
    Ok(match expected {
        Some(Unsupported(n)) if n == name => Unsupported(n),
        _ => Unsupported(Box::leak(name.to_string().into_boxed_str())),
    })
}

#[test]
fn every_starter_workflow_is_in_the_table_with_its_outcome() {
    let corpus = corpus_dir();
    let files = yaml_files(&corpus);
    assert!(files.len() >= 80, "corpus not found at {}", corpus.display());
    let mut failures = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&corpus).unwrap_or(file).to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let Some((_, expected, _)) = STARTERS.iter().find(|(p, _, _)| *p == rel) else {
            failures.push(format!("{rel}: missing from STARTERS"));
            continue;
        };
        match outcome_of(&rel, &text) {
            Ok(got) if got == *expected => {}
            Ok(got) => failures.push(format!("{rel}: expected {expected:?}, got {got:?}")),
            Err(e) => failures.push(format!("{rel}: unexpected errors:\n{e}")),
        }
        // The placeholder substituted, the file behaves the same.
        let substituted = workflow::with_default_branch(&text, "main");
        if outcome_of(&rel, &substituted).ok() != Some(*expected) {
            failures.push(format!("{rel}: outcome changes with $default-branch substituted"));
        }
    }
    for (path, _, _) in STARTERS {
        if !files.iter().any(|f| f.ends_with(path)) {
            failures.push(format!("{path}: in STARTERS but not in the corpus"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn default_branch_placeholder() {
    let text = std::fs::read_to_string(corpus_dir().join("ci/rust.yml")).unwrap_or_default();
    let w = workflow::parse("rust.yml", &text).unwrap();
    assert_eq!(w.on.push.unwrap().branches, ["$default-branch"]);
    let w = workflow::parse("rust.yml", &workflow::with_default_branch(&text, "trunk")).unwrap();
    assert_eq!(w.on.push.unwrap().branches, ["trunk"]);
}

#[test]
fn invalid_yaml_fixtures() {
    for (file, expected) in [("invalid-flow.yml", "invalid-flow.yml:5:"), ("invalid-tab.yml", "invalid-tab.yml:4:")] {
        let text = std::fs::read_to_string(format!("{FIXTURES}/{file}")).unwrap_or_default();
        let diags = workflow::lint(file, &text);
        assert_eq!(diags.len(), 1, "{diags:?}");
        let shown = diags[0].to_string();
        assert!(shown.starts_with(expected) && shown.contains(": error: invalid YAML: "), "{shown}");
        assert!(!shown.contains(" at line "), "position repeated: {shown}");
        assert!(workflow::parse(file, &text).is_err());
    }
}
