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
    /// Parses; the first lint error names this action, `container`, `services` or the
    /// reusable workflow.
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
    ("ci/d.yml", Unsupported("dlang-community/setup-dlang"), "`dlang-community/setup-dlang` is a third-party action"),
    ("ci/dart.yml", Unsupported("dart-lang/setup-dart"), "`dart-lang/setup-dart` is a third-party action"),
    (
        "ci/datadog-synthetics.yml",
        Unsupported("DataDog/synthetics-ci-github-action"),
        "`DataDog/synthetics-ci-github-action` is a third-party action",
    ),
    ("ci/deno.yml", Unsupported("denoland/setup-deno"), "`denoland/setup-deno` is a third-party action"),
    ("ci/django.yml", Runnable, "run steps and built-in actions only"),
    ("ci/docker-image.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/docker-publish.yml",
        Unsupported("sigstore/cosign-installer"),
        "`sigstore/cosign-installer` is a third-party action",
    ),
    ("ci/dotnet-desktop.yml", Unsupported("actions/setup-dotnet"), "`actions/setup-dotnet` is a third-party action"),
    ("ci/dotnet.yml", Unsupported("actions/setup-dotnet"), "`actions/setup-dotnet` is a third-party action"),
    ("ci/elixir.yml", Unsupported("erlef/setup-beam"), "`erlef/setup-beam` is a third-party action"),
    ("ci/erlang.yml", Unsupported("container"), "the job needs Docker (`container:`)"),
    ("ci/gem-push.yml", Unsupported("ruby/setup-ruby"), "`ruby/setup-ruby` is a third-party action"),
    (
        "ci/generator-generic-ossf-slsa3-publish.yml",
        Unsupported("slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml"),
        "a job calls a reusable workflow",
    ),
    (
        "ci/go-ossf-slsa3-publish.yml",
        Unsupported("slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml"),
        "a job calls a reusable workflow",
    ),
    ("ci/go.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/gradle-publish.yml",
        Unsupported("gradle/actions/setup-gradle"),
        "`gradle/actions/setup-gradle` is a third-party action",
    ),
    (
        "ci/gradle.yml",
        Unsupported("gradle/actions/setup-gradle"),
        "`gradle/actions/setup-gradle` is a third-party action",
    ),
    ("ci/haskell.yml", Unsupported("actions/setup-haskell"), "`actions/setup-haskell` is a third-party action"),
    ("ci/ios.yml", Runnable, "run steps and built-in actions only"),
    ("ci/jekyll-docker.yml", Runnable, "run steps and built-in actions only"),
    ("ci/laravel.yml", Unsupported("shivammathur/setup-php"), "`shivammathur/setup-php` is a third-party action"),
    ("ci/makefile.yml", Runnable, "run steps and built-in actions only"),
    ("ci/maven-publish.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/maven.yml",
        Unsupported("advanced-security/maven-dependency-submission-action"),
        "`advanced-security/maven-dependency-submission-action` is a third-party action",
    ),
    ("ci/msbuild.yml", Unsupported("microsoft/setup-msbuild"), "`microsoft/setup-msbuild` is a third-party action"),
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
        Unsupported("pypa/gh-action-pypi-publish"),
        "`pypa/gh-action-pypi-publish` is a third-party action",
    ),
    ("ci/r.yml", Unsupported("r-lib/actions/setup-r"), "`r-lib/actions/setup-r` is a third-party action"),
    ("ci/ruby.yml", Unsupported("ruby/setup-ruby"), "`ruby/setup-ruby` is a third-party action"),
    ("ci/rubyonrails.yml", Unsupported("services"), "the job needs Docker (`services:`)"),
    ("ci/rust.yml", Runnable, "run steps and built-in actions only"),
    (
        "ci/scala.yml",
        Unsupported("scalacenter/sbt-dependency-submission"),
        "`scalacenter/sbt-dependency-submission` is a third-party action",
    ),
    ("ci/super-linter.yml", Unsupported("github/super-linter"), "`github/super-linter` is a third-party action"),
    ("ci/swift.yml", Runnable, "run steps and built-in actions only"),
    ("ci/symfony.yml", Unsupported("shivammathur/setup-php"), "`shivammathur/setup-php` is a third-party action"),
    ("ci/webpack.yml", Runnable, "run steps and built-in actions only"),
    ("deployments/alibabacloud.yml", Unsupported("aliyun/acr-login"), "`aliyun/acr-login` is a third-party action"),
    (
        "deployments/aws.yml",
        Unsupported("aws-actions/configure-aws-credentials"),
        "`aws-actions/configure-aws-credentials` is a third-party action",
    ),
    (
        "deployments/azure-container-webapp.yml",
        Unsupported("docker/setup-buildx-action"),
        "`docker/setup-buildx-action` is a third-party action",
    ),
    (
        "deployments/azure-functions-app-container.yml",
        Unsupported("azure/login"),
        "`azure/login` is a third-party action",
    ),
    (
        "deployments/azure-functions-app-dotnet.yml",
        Unsupported("actions/setup-dotnet"),
        "`actions/setup-dotnet` is a third-party action",
    ),
    (
        "deployments/azure-functions-app-java-gradle.yml",
        Unsupported("Azure/functions-action"),
        "`Azure/functions-action` is a third-party action",
    ),
    (
        "deployments/azure-functions-app-java.yml",
        Unsupported("Azure/functions-action"),
        "`Azure/functions-action` is a third-party action",
    ),
    (
        "deployments/azure-functions-app-nodejs.yml",
        Unsupported("Azure/functions-action"),
        "`Azure/functions-action` is a third-party action",
    ),
    (
        "deployments/azure-functions-app-powershell.yml",
        Unsupported("Azure/functions-action"),
        "`Azure/functions-action` is a third-party action",
    ),
    (
        "deployments/azure-functions-app-python.yml",
        Unsupported("Azure/functions-action"),
        "`Azure/functions-action` is a third-party action",
    ),
    (
        "deployments/azure-kubernetes-service-helm.yml",
        Unsupported("azure/login"),
        "`azure/login` is a third-party action",
    ),
    (
        "deployments/azure-kubernetes-service-kompose.yml",
        Unsupported("azure/login"),
        "`azure/login` is a third-party action",
    ),
    (
        "deployments/azure-kubernetes-service-kustomize.yml",
        Unsupported("azure/login"),
        "`azure/login` is a third-party action",
    ),
    ("deployments/azure-kubernetes-service.yml", Unsupported("azure/login"), "`azure/login` is a third-party action"),
    (
        "deployments/azure-staticwebapp.yml",
        Unsupported("Azure/static-web-apps-deploy"),
        "`Azure/static-web-apps-deploy` is a third-party action",
    ),
    (
        "deployments/azure-webapps-dotnet-core.yml",
        Unsupported("actions/setup-dotnet"),
        "`actions/setup-dotnet` is a third-party action",
    ),
    (
        "deployments/azure-webapps-java-jar-gradle.yml",
        Unsupported("azure/webapps-deploy"),
        "`azure/webapps-deploy` is a third-party action",
    ),
    (
        "deployments/azure-webapps-java-jar.yml",
        Unsupported("azure/webapps-deploy"),
        "`azure/webapps-deploy` is a third-party action",
    ),
    (
        "deployments/azure-webapps-node.yml",
        Unsupported("azure/webapps-deploy"),
        "`azure/webapps-deploy` is a third-party action",
    ),
    (
        "deployments/azure-webapps-php.yml",
        Unsupported("shivammathur/setup-php"),
        "`shivammathur/setup-php` is a third-party action",
    ),
    (
        "deployments/azure-webapps-python.yml",
        Unsupported("azure/webapps-deploy"),
        "`azure/webapps-deploy` is a third-party action",
    ),
    (
        "deployments/google-cloudrun-docker.yml",
        Unsupported("google-github-actions/auth"),
        "`google-github-actions/auth` is a third-party action",
    ),
    (
        "deployments/google-cloudrun-source.yml",
        Unsupported("google-github-actions/auth"),
        "`google-github-actions/auth` is a third-party action",
    ),
    (
        "deployments/google.yml",
        Unsupported("google-github-actions/auth"),
        "`google-github-actions/auth` is a third-party action",
    ),
    ("deployments/ibm.yml", Runnable, "run steps and built-in actions only"),
    (
        "deployments/octopusdeploy.yml",
        Unsupported("docker/setup-buildx-action"),
        "`docker/setup-buildx-action` is a third-party action",
    ),
    (
        "deployments/openshift.yml",
        Unsupported("actions/github-script"),
        "`actions/github-script` is a third-party action",
    ),
    (
        "deployments/tencent.yml",
        Unsupported("TencentCloud/tke-cluster-credential-action"),
        "`TencentCloud/tke-cluster-credential-action` is a third-party action",
    ),
    (
        "deployments/terraform.yml",
        Unsupported("hashicorp/setup-terraform"),
        "`hashicorp/setup-terraform` is a third-party action",
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
        return workflow::parse(path, text).map(|_| Runnable).map_err(|e| format!("{e:?}"));
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
