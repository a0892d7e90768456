//! The typed workflow model: what a workflow file says, after validation.

use serde_json::{Map, Value};

pub use super::call::{
    Call, CallArg, CallInput, CallInputKind, CallOutput, CallSecret, CallSecrets, CallTarget, CallTargetError,
    WorkflowCall, call_target,
};
pub use super::yaml::Pos;

/// Name-value pairs in file order (`env`, `with`, `outputs`), scalars rendered as strings.
pub type Pairs = Vec<(String, String)>;

/// A setting that is either a literal or a `${{ }}` expression evaluated at run time
/// (`continue-on-error: ${{ matrix.experimental }}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Setting<T> {
    /// A literal value.
    Value(T),
    /// The expression text, including its `${{ }}`.
    Expr(String),
}

/// A whole workflow file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Workflow {
    /// `name`.
    pub name: Option<String>,
    /// `run-name`, a template.
    pub run_name: Option<String>,
    /// `on`: the events that start the workflow.
    pub on: Triggers,
    /// Workflow-level `env`. As in [`Job::env`], one entry with an empty name stands for a whole
    /// mapping given as one expression.
    pub env: Pairs,
    /// `defaults.run`.
    pub defaults: RunDefaults,
    /// `permissions`, recorded as written; Mobius does not issue tokens.
    pub permissions: Option<Value>,
    /// `concurrency`.
    pub concurrency: Option<Concurrency>,
    /// `jobs`, in file order (the order is the tie-break when scheduling).
    pub jobs: Vec<Job>,
}

impl Workflow {
    /// The job with this id.
    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.id == id)
    }
}

/// The events of `on:`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Triggers {
    /// `push`.
    pub push: Option<RefFilter>,
    /// `pull_request`. (`pull_request_target` runs the base branch's workflow on GitHub, so
    /// it is only recorded in [`Triggers::other`].)
    pub pull_request: Option<RefFilter>,
    /// `release` (only its `types` filter applies).
    pub release: Option<RefFilter>,
    /// `workflow_dispatch`.
    pub workflow_dispatch: Option<Vec<Input>>,
    /// `workflow_call`: the workflow is reusable, with these inputs, outputs and secrets.
    pub workflow_call: Option<WorkflowCall>,
    /// `schedule`: the cron strings, validated as 5-field cron.
    pub schedule: Vec<String>,
    /// Other GitHub events, recorded by name; Mobius does not raise them.
    pub other: Vec<String>,
}

/// The filters of `push` / `pull_request`. `$default-branch` is kept literally in `branches`;
/// see [`super::with_default_branch`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RefFilter {
    /// `branches`.
    pub branches: Vec<String>,
    /// `branches-ignore`.
    pub branches_ignore: Vec<String>,
    /// `tags`.
    pub tags: Vec<String>,
    /// `tags-ignore`.
    pub tags_ignore: Vec<String>,
    /// `paths`.
    pub paths: Vec<String>,
    /// `paths-ignore`.
    pub paths_ignore: Vec<String>,
    /// `types` (activity types of `pull_request`).
    pub types: Vec<String>,
}

/// A `workflow_dispatch` input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The input's name.
    pub name: String,
    /// `description`.
    pub description: Option<String>,
    /// `required` (default false).
    pub required: bool,
    /// `type` (default string).
    pub kind: InputKind,
    /// `default`, as a string.
    pub default: Option<String>,
}

/// The `type` of a dispatch input.
#[derive(Debug, Clone, PartialEq)]
pub enum InputKind {
    /// `string`.
    String,
    /// `boolean`.
    Boolean,
    /// `number`.
    Number,
    /// `environment`.
    Environment,
    /// `choice` with its `options`.
    Choice(Vec<String>),
}

/// `defaults.run`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunDefaults {
    /// `shell`.
    pub shell: Option<String>,
    /// `working-directory`.
    pub working_directory: Option<String>,
}

/// `concurrency`.
#[derive(Debug, Clone, PartialEq)]
pub struct Concurrency {
    /// `group` (a template).
    pub group: String,
    /// `cancel-in-progress`.
    pub cancel_in_progress: Setting<bool>,
}

/// One job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// The job id (its key under `jobs`).
    pub id: String,
    /// Where the job's key is.
    pub pos: Pos,
    /// `name`.
    pub name: Option<String>,
    /// `needs`, each with its position.
    pub needs: Vec<(String, Pos)>,
    /// `if`, as written.
    pub if_: Option<String>,
    /// `runs-on`, recorded as written; the engine renders it into labels that may route the
    /// job to an agent (`engine::runs_on_labels`).
    pub runs_on: Option<Value>,
    /// The `environment` name.
    pub environment: Option<String>,
    /// `strategy`.
    pub strategy: Option<Strategy>,
    /// `timeout-minutes` (default 360).
    pub timeout_minutes: Setting<f64>,
    /// `continue-on-error` (default false).
    pub continue_on_error: Setting<bool>,
    /// `outputs`.
    pub outputs: Pairs,
    /// `env`. `env: ${{ fromJSON(...) }}`, a whole mapping given as one expression, is one
    /// entry with an empty name and the expression as its value; the engine evaluates it to a
    /// mapping and uses its entries.
    pub env: Pairs,
    /// `defaults.run`.
    pub defaults: RunDefaults,
    /// `concurrency`.
    pub concurrency: Option<Concurrency>,
    /// `steps`; empty for a job that calls a reusable workflow.
    pub steps: Vec<Step>,
    /// `uses`, `with` and `secrets`: the reusable workflow the job runs instead of steps.
    pub uses: Option<Call>,
}

/// `strategy`.
#[derive(Debug, Clone, PartialEq)]
pub struct Strategy {
    /// `matrix`; `None` when absent.
    pub matrix: Option<MatrixSpec>,
    /// `fail-fast` (default true).
    pub fail_fast: Setting<bool>,
    /// `max-parallel`.
    pub max_parallel: Option<Setting<f64>>,
}

/// A `matrix`, literal or computed at run time.
#[derive(Debug, Clone, PartialEq)]
pub enum MatrixSpec {
    /// Written out in the file.
    Static(Matrix),
    /// An expression (`${{ fromJSON(needs.setup.outputs.matrix) }}`), expanded at run time.
    Expr(String),
    /// A mapping with an expression somewhere in it (`os: ${{ fromJSON(needs.a.outputs.os) }}`,
    /// `include: ${{ … }}`, a value inside an axis or entry, or a key such as an axis named
    /// `${{ inputs.axis }}`), its entries in file order; every string and key holding `${{` is
    /// evaluated at run time.
    Computed(Vec<(String, Value)>),
}

/// A literal matrix.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matrix {
    /// The axes, in file order.
    pub axes: Vec<(String, Vec<Value>)>,
    /// `include` entries.
    pub include: Vec<Map<String, Value>>,
    /// `exclude` entries.
    pub exclude: Vec<Map<String, Value>>,
}

/// One step.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Where the step starts.
    pub pos: Pos,
    /// `id`.
    pub id: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `run` or `uses`.
    pub action: StepAction,
    /// `shell`.
    pub shell: Option<String>,
    /// `working-directory`.
    pub working_directory: Option<String>,
    /// `env`. As in [`Job::env`], one entry with an empty name stands for a whole mapping given
    /// as one expression.
    pub env: Pairs,
    /// `if`, as written.
    pub if_: Option<String>,
    /// `continue-on-error` (default false).
    pub continue_on_error: Setting<bool>,
    /// `timeout-minutes`.
    pub timeout_minutes: Option<Setting<f64>>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    /// `run`: a script.
    Run(String),
    /// `uses` with its `with` inputs.
    Uses {
        /// The action reference, e.g. `actions/checkout@v4`.
        action: String,
        /// `with`.
        with: Pairs,
        /// Where the `uses` value is, for errors about the action.
        pos: Pos,
    },
}
