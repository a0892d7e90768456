//! Every built-in rule against synthetic true and false positives (see `util::synth` for the
//! `{kind:N}` placeholders). A rule without both kinds of fixture fails `every_rule_has_fixtures`.

use std::sync::LazyLock;

use mobius_scan::Config;

use crate::util::{detect, synth};

/// (rule id, true positives, false positives).
type Fixture = (&'static str, &'static [&'static str], &'static [&'static str]);

const UUID: &str = "{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}";

const FIXTURES: &[Fixture] = &[
    (
        "aws-access-key-id",
        &["aws_access_key_id = AKIA{B32:16}", "\"AccessKeyId\": \"ASIA{B32:16}\""],
        &["aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "id = akia{B32:16}", "AKIA{B32:12}"],
    ),
    (
        "aws-secret-access-key",
        &["aws_secret_access_key = \"{b64:40}\"", "AWS_SECRET_ACCESS_KEY: {b64:40}"],
        &[
            "aws_secret_access_key = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\"",
            "aws_secret_access_key = \"{b64:20}\"",
            "aws_secret_access_key = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
        ],
    ),
    ("gcp-api-key", &["const key = \"AIza{url:35}\";"], &["AIza{url:20}"]),
    (
        "gcp-service-account-key",
        &["  \"type\": \"service_account\",\n  \"private_key_id\": \"{hex:40}\","],
        &["  \"private_key_id\": \"YOUR_PRIVATE_KEY_ID\","],
    ),
    ("gcp-oauth-client-secret", &["client_secret=GOCSPX-{url:28}"], &["client_secret=GOCSPX-{url:10}"]),
    (
        "azure-storage-connection-string",
        &[
            "DefaultEndpointsProtocol=https;AccountName=mobiusfixture;AccountKey={b64:86}==;EndpointSuffix=core.windows.net",
        ],
        &[
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;",
            "DefaultEndpointsProtocol=https;AccountName=mobiusfixture;AccountKey=<your-key>",
        ],
    ),
    (
        "azure-service-bus-connection-string",
        &[
            "Endpoint=sb://mobius-fixture.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={b64:43}=",
        ],
        &["Endpoint=sb://mobius-fixture.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=<key>"],
    ),
    ("azure-ad-client-secret", &["AZURE_CLIENT_SECRET=\"{an:3}8Q~{an:34}\""], &["AZURE_CLIENT_SECRET=\"abc8Q~short\""]),
    (
        "github-pat",
        &["GITHUB_TOKEN=ghp_{an:36}"],
        &["GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "ghp_{an:20}"],
    ),
    ("github-fine-grained-pat", &["token: github_pat_{an:22}_{an:59}"], &["token: github_pat_{an:22}"]),
    ("github-oauth-token", &["gho_{an:36}"], &["gho_{an:35}"]),
    ("github-app-token", &["ghs_{an:36}", "ghu_{an:36}"], &["ghs_{an:40}"]),
    ("github-refresh-token", &["ghr_{an:76}"], &["ghr_{an:12}"]),
    (
        "gitlab-pat",
        &["GITLAB_TOKEN=glpat-{url:20}", "glpat-{url:27}.01{lan:7}"],
        &["glpat-xxxxxxxxxxxxxxxxxxxx", "glpat-{url:8}"],
    ),
    ("gitlab-runner-token", &["token = \"glrt-{url:20}\""], &["glrt-aaaaaaaaaaaaaaaaaaaa"]),
    ("gitlab-runner-registration-token", &["registration-token: GR1348941{url:20}"], &["GR1348941{url:10}"]),
    ("gitlab-pipeline-trigger-token", &["TRIGGER=glptt-{hex:40}"], &["TRIGGER=glptt-{HEX:40}"]),
    ("gitlab-deploy-token", &["gldt-{url:20}"], &["gldt-{url:5}"]),
    ("bitbucket-app-password", &["BITBUCKET_APP_PASSWORD=ATBB{an:32}"], &["ATBB{an:10}"]),
    ("atlassian-api-token", &["JIRA_API_TOKEN=ATATT3{url:186}"], &["ATATT3{url:40}"]),
    ("slack-bot-token", &["SLACK_BOT_TOKEN=xoxb-{d:11}-{d:12}-{an:24}"], &["xoxb-{d:3}-{an:10}"]),
    ("slack-user-token", &["xoxp-{d:11}-{d:11}-{d:12}-{hex:32}"], &["xoxp-123-456"]),
    ("slack-app-token", &["xapp-1-A{UAN:10}-{d:13}-{hex:64}"], &["xapp-1-{UAN:10}"]),
    (
        "slack-webhook-url",
        &["url: https://hooks.slack.com/services/T{UAN:10}/B{UAN:10}/{an:24}"],
        &["https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"],
    ),
    (
        "discord-webhook-url",
        &["https://discord.com/api/webhooks/{d:18}/{url:68}"],
        &["https://discord.com/api/webhooks/{d:18}/short"],
    ),
    (
        "teams-webhook-url",
        &[
            "https://mobiusfixture.webhook.office.com/webhookb2/{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}@{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}/IncomingWebhook/{hex:32}/{hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}",
        ],
        &["https://mobiusfixture.webhook.office.com/webhookb2/not-a-webhook"],
    ),
    (
        "stripe-secret-key",
        &["STRIPE_KEY=sk_live_{an:24}", "sk_test_{an:99}"],
        &["sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "sk_live_{an:10}"],
    ),
    ("stripe-restricted-key", &["rk_live_{an:24}"], &["rk_live_{an:8}"]),
    ("stripe-webhook-secret", &["STRIPE_WEBHOOK_SECRET=whsec_{an:32}"], &["whsec_{an:8}"]),
    ("square-access-token", &["EAAA{url:60}", "sq0atp-{url:22}"], &["EAAA{url:30}"]),
    ("square-oauth-secret", &["sq0csp-{url:43}"], &["sq0csp-{url:20}"]),
    (
        "paypal-braintree-access-token",
        &["BRAINTREE=access_token$production${lan:16}${hex:32}"],
        &["access_token$production$abc$def"],
    ),
    ("twilio-api-key", &["TWILIO_API_KEY=SK{hex:32}"], &["SK{HEX:32}", "SK00000000000000000000000000000000"]),
    ("twilio-auth-token", &["TWILIO_AUTH_TOKEN={hex:32}"], &["TWILIO_AUTH_TOKEN=your_auth_token"]),
    ("sendgrid-api-key", &["SENDGRID_API_KEY=SG.{url:22}.{url:43}"], &["SG.{url:5}.{url:5}"]),
    (
        "mailgun-api-key",
        &["MAILGUN_API_KEY=key-{hex:32}", "mailgun_key: {hex:32}-{hex:8}-{hex:8}"],
        &["MAILGUN_API_KEY=key-xyz"],
    ),
    ("mailchimp-api-key", &["MAILCHIMP_KEY={hex:32}-us21"], &["00000000000000000000000000000000-us6"]),
    ("npm-access-token", &["//registry.npmjs.org/:_authToken=npm_{an:36}"], &["npm_{an:20}"]),
    ("pypi-upload-token", &["password = pypi-AgEIcHlwaS5vcmc{url:70}"], &["pypi-AgEIcHlwaS5vcmc{url:10}"]),
    ("dockerhub-pat", &["DOCKER_PASSWORD=dckr_pat_{url:27}"], &["dckr_pat_{url:10}"]),
    (
        "heroku-api-key",
        &["HEROKU_API_KEY={hex:8}-{hex:4}-{hex:4}-{hex:4}-{hex:12}", "HRKU-{url:60}"],
        &["HEROKU_APP=my-app", "HEROKU_API_KEY=00000000-0000-0000-0000-000000000000"],
    ),
    ("digitalocean-token", &["DIGITALOCEAN_TOKEN=dop_v1_{hex:64}"], &["dop_v1_{hex:10}"]),
    ("shopify-token", &["shpat_{hex:32}", "shpss_{hex:32}"], &["shpat_{hex:8}"]),
    ("linear-api-key", &["LINEAR_API_KEY=lin_api_{an:40}"], &["lin_api_{an:8}"]),
    ("notion-api-token", &["NOTION_TOKEN=ntn_{d:11}{an:35}"], &["ntn_{an:10}"]),
    (
        "openai-api-key",
        &["OPENAI_API_KEY=sk-proj-{url:40}T3BlbkFJ{url:40}", "sk-{an:20}T3BlbkFJ{an:20}"],
        &["keys contain the marker T3BlbkFJ", "sk-{an:48}"],
    ),
    ("anthropic-api-key", &["ANTHROPIC_API_KEY=sk-ant-api03-{url:93}AA"], &["sk-ant-api03-{url:20}"]),
    ("huggingface-token", &["HF_TOKEN=hf_{alpha:34}"], &["hf_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]),
    ("databricks-token", &["DATABRICKS_TOKEN=dapi{hex:32}"], &["dapi{hex:10}"]),
    ("datadog-api-key", &["DD_API_KEY={hex:32}", "datadog_app_key: {hex:40}"], &["DD_API_KEY=<your key>"]),
    ("newrelic-user-api-key", &["NEW_RELIC_API_KEY=NRAK-{UAN:27}"], &["NRAK-{UAN:5}"]),
    ("newrelic-license-key", &["license_key: {hex:36}NRAL"], &["{hex:10}NRAL"]),
    ("sentry-auth-token", &["SENTRY_AUTH_TOKEN=sntryu_{hex:64}", "sntrys_eyJ{b64:100}"], &["sntryu_{hex:10}"]),
    ("grafana-cloud-token", &["GRAFANA_TOKEN=glc_{b64:40}"], &["glc_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]),
    ("grafana-service-account-token", &["glsa_{an:32}_{hex:8}"], &["glsa_{an:10}"]),
    ("okta-api-token", &["OKTA_API_TOKEN=00{url:40}"], &["okta_domain = \"dev-123456.okta.com\""]),
    ("doppler-token", &["DOPPLER_TOKEN=dp.pt.{an:43}"], &["dp.pt.{an:10}"]),
    ("vault-token", &["VAULT_TOKEN=hvs.{url:95}"], &["hvs.{url:20}"]),
    ("age-secret-key", &["AGE-SECRET-KEY-1{AGE:58}"], &["AGE-SECRET-KEY-1{AGE:10}"]),
    ("postman-api-key", &["PMAK-{hex:24}-{hex:34}"], &["PMAK-{hex:5}"]),
    ("pulumi-access-token", &["PULUMI_ACCESS_TOKEN=pul-{hex:40}"], &["pul-{hex:10}"]),
    ("planetscale-token", &["pscale_tkn_{url:43}"], &["pscale_tkn_{url:10}"]),
    (
        "private-key",
        &[
            "-----BEGIN RSA PRIVATE KEY-----\n{b64:64}\n{b64:40}\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{HEX:32}\n\n{b64:64}\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN EC PRIVATE KEY-----\n{b64:64}\n{b64:40}\n-----END EC PRIVATE KEY-----",
            "-----BEGIN DSA PRIVATE KEY-----\n{b64:64}\n{b64:40}\n-----END DSA PRIVATE KEY-----",
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{b64:70}\n{b64:70}\n-----END OPENSSH PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\n{b64:64}\n{b64:64}\n-----END PRIVATE KEY-----",
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{b64:64}\n{b64:64}\n-----END PGP PRIVATE KEY BLOCK-----",
        ],
        &[
            "-----BEGIN PUBLIC KEY-----\n{b64:64}\n{b64:64}\n-----END PUBLIC KEY-----",
            "-----BEGIN RSA PRIVATE KEY-----\n-----END RSA PRIVATE KEY-----",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nshort\n-----END OPENSSH PRIVATE KEY-----\n{b64:70}\n-----END OPENSSH PRIVATE KEY-----",
        ],
    ),
    (
        "jwt",
        &["Authorization: Bearer eyJ{url:20}.eyJ{url:40}.{url:43}"],
        &["header = eyJhbGciOiJIUzI1NiJ9", "eyJ{url:20}.notjson"],
    ),
    (
        "generic-api-key",
        &["db_password = \"{an:24}\"", "api_key: {an:32}", "\"client_secret\": \"{an:30}\""],
        &[
            "password = \"${DB_PASSWORD}\"",
            "api_key = \"your_api_key_here_please\"",
            "token = self.settings.api_token",
            "secret_key = SECRET_KEY_FROM_ENVIRONMENT",
            "password = \"aaaaaaaaaaaaaaaa\"",
            "password_policy = index_window(offset, 123)",
            "secret_ref: record_window-42",
            "api_key: AbCdEfGhIjKlMnOpQrSt",
            "TOKEN=bench-admin-token-of-at-least-32-chars",
            "token = {an:62}{an:62}{an:62}",
            "credentials: `https://***@prometheus:9090/prefix`",
        ],
    ),
];

/// The default config with only `id`'s rule, as gitleaks validates each rule alone.
fn only(id: &str) -> Config {
    static DEFAULTS: LazyLock<Config> = LazyLock::new(Config::default_rules);
    let mut config = DEFAULTS.clone();
    config.rules.retain(|rule| rule.id == id);
    assert_eq!(config.rules.len(), 1, "no built-in rule `{id}`");
    config
}

#[test]
fn every_rule_has_fixtures() {
    let config = Config::default_rules();
    assert!(config.rules.len() >= 50, "{} built-in rules", config.rules.len());
    let missing: Vec<&str> = config
        .rules
        .iter()
        .map(|rule| rule.id.as_str())
        .filter(|id| !FIXTURES.iter().any(|(rule, tps, fps)| rule == id && !tps.is_empty() && !fps.is_empty()))
        .collect();
    assert!(missing.is_empty(), "rules without true- and false-positive fixtures: {missing:?}");
    let unknown: Vec<&str> = FIXTURES.iter().map(|(id, _, _)| *id).filter(|id| config.rule(id).is_none()).collect();
    assert!(unknown.is_empty(), "fixtures for rules that do not exist: {unknown:?}");
}

#[test]
fn true_positives_are_found_by_their_rule() {
    let mut failures = Vec::new();
    for (id, tps, _) in FIXTURES {
        let config = only(id);
        for tp in *tps {
            let text = synth(tp);
            let findings = detect(&config, "fixture.txt", &text);
            if findings.is_empty() {
                failures.push(format!("{id}: missed {text:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn false_positives_are_not_found_by_their_rule() {
    let mut failures = Vec::new();
    for (id, _, fps) in FIXTURES {
        let config = only(id);
        for fp in *fps {
            let text = synth(fp);
            let findings = detect(&config, "fixture.txt", &text);
            if !findings.is_empty() {
                failures.push(format!("{id}: flagged {text:?} as {:?}", findings[0].secret));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn true_positives_are_reported_once_with_every_rule_on() {
    let config = Config::default_rules();
    let mut failures = Vec::new();
    for (id, tps, _) in FIXTURES {
        for tp in *tps {
            let text = synth(tp);
            let findings = detect(&config, "fixture.txt", &text);
            let own = findings.iter().filter(|f| f.rule_id == *id).count();
            let generic =
                findings.iter().filter(|f| f.rule_id == "generic-api-key" && *id != "generic-api-key").count();
            if own == 0 || generic > 0 {
                let ids: Vec<&str> = findings.iter().map(|f| f.rule_id.as_str()).collect();
                failures.push(format!("{id}: {text:?} gave {ids:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_secret_is_the_token_not_its_surroundings() {
    let config = only("github-pat");
    let token = synth("ghp_{an:36}");
    let findings = detect(&config, "a.env", &format!("x=1\nGITHUB_TOKEN=\"{token}\" # ci\n"));
    assert_eq!(findings.len(), 1);
    let finding = &findings[0];
    assert_eq!(finding.secret, token);
    assert_eq!(finding.matched, token);
    assert_eq!((finding.start_line, finding.end_line), (2, 2));
    assert_eq!((finding.start_column, finding.end_column), (15, 14 + token.len()));
    assert_eq!(finding.fingerprint, "a.env:github-pat:2");
    assert!(finding.entropy > 4.0, "{}", finding.entropy);
}

#[test]
fn synthetic_secrets_are_deterministic_and_sized() {
    assert_eq!(synth("{hex:4}"), "5c3a");
    assert_eq!(synth("a{d:3}b{d:3}"), "a529b074");
    assert_eq!(synth(UUID).len(), 36);
    assert_eq!(synth("{b64:86}").len(), 86);
}
