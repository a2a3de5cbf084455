"""Tasks of the dox-asdlc GitOps repository: ``./dox --list`` shows them.

Each task is thin: it parses options and calls into the ``doxops`` package.
Errors are :class:`doxops.errors.DoxError`; ``_task`` turns them into invoke's
``Exit`` with the contract's code (0 ok, 1 findings, 2 usage, 3 tool).
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys

from invoke import Collection, Exit, Task, task

from doxops import errors


def _params(doc: str) -> dict[str, str]:
    """``{option: help}`` from the docstring's ``:param name: text`` lines (shown by --help TASK)."""
    found: dict[str, str] = {}
    for match in re.finditer(r"^\s*:param (\w+): (.+(?:\n\s{8,}(?!:).+)*)", doc or "", re.MULTILINE):
        found[match.group(1)] = " ".join(part.strip() for part in match.group(2).splitlines())
    return found


class DoxTask(Task):
    """A task whose automatic short flags are letters only.

    invoke picks a short flag from the option's name, letter by letter; when every letter is taken it takes the
    ``-`` of ``no-server``, which ``--help`` shows as ``--`` and the parser cannot read. Such a flag is dropped.
    """

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        opts["names"] = [n for n in opts["names"] if n.strip("-_")]
        return opts


def dox_task(function=None, **options):
    """``@task`` with the option help taken from the docstring and the error mapping of ``_task``."""

    def decorate(fn):
        return task(help=_params(fn.__doc__), klass=DoxTask, **options)(_task(fn))

    return decorate(function) if function is not None else decorate


def _task(function):
    """Map DoxError and Ctrl-C onto Exit(message, code) so no traceback escapes."""

    @functools.wraps(function)
    def wrapper(c, *args, **kwargs):
        try:
            return function(c, *args, **kwargs)
        except errors.DoxError as exc:
            raise Exit(f"dox {function.__name__}: {exc.message}", code=exc.code) from None
        except KeyboardInterrupt:
            raise Exit(f"dox {function.__name__}: interrupted", code=errors.TOOL) from None

    return wrapper


@dox_task
def tools(c, check=False):
    """Build missing pinned tools and schemas, then list tool, version, path and origin.

    The e2e control plane's binaries ([cluster.*]) are listed too, but built only by ./dox test and ./dox e2e.

    :param check: build nothing; exit 3 if a pinned tool is missing or not the pinned build.
    """
    from doxops import gotools, schemas, toolchain
    from doxops.cluster import binaries

    resolved = toolchain.resolve_all(build_missing=not check)
    cluster = binaries.load_specs()
    width = max(len(n) for n in [*(t.name for t in resolved), *cluster])
    for t in resolved:
        origin = f"built in {t.build_seconds:.0f} s" if t.build_seconds else t.origin
        print(f"{t.name:<{width}}  {t.version:<8}  {t.path}  [{origin}]")
    for name, spec in cluster.items():  # looked at only: no lock, nothing built or removed here
        directory = gotools.tool_dir(spec)
        if not all((directory / b).exists() for b in spec.binaries):
            where, origin = "not built yet (./dox test or ./dox e2e builds it)", "e2e"
        elif problem := next(filter(None, (gotools.check(spec, directory / b) for b in spec.binaries)), None):
            where, origin = f"{directory}: not the pinned build ({problem}); the next ./dox test rebuilds it", "e2e"
        else:
            where, origin = str(directory), "cache"
        print(f"{name:<{width}}  {spec.version:<8}  {where}  [{origin}]")
    if not check:
        from doxops import environments

        for version in sorted({e.kubernetes_version for e in environments.discover()} or {"1.36"}):
            found = schemas.schema_set(version)
            print(f"{'schemas':<{width}}  {schemas.minor_of(version):<8}  {found.kubernetes_dir}")
        print(f"{'crds':<{width}}  {'-':<8}  {found.crd_dir}")


@dox_task(iterable=["pytest_args"])
def test(c, pytest_args=None, k=None):
    """Set up everything the suite needs (system programs, tools, schemas), then run it with pytest.

    Missing system programs (git, openssl, setpriv, redis-server) are installed from Debian's packages, as
    root or through passwordless sudo; otherwise the error names the one command to run (exit 3).

    :param pytest_args: extra arguments for pytest (repeatable), e.g. --pytest-args=-x
    :param k: only tests matching this pytest -k expression
    """
    from doxops import environments, prereqs, schemas, toolchain
    from doxops.cluster import binaries

    prereqs.ensure(progress=lambda message: print(f"dox test: {message}", file=sys.stderr, flush=True))
    toolchain.resolve_all()
    binaries.ensure()  # the e2e control plane: built once per machine (about 8 minutes cold)
    for version in sorted({e.kubernetes_version for e in environments.discover()} or {"1.36"}):
        schemas.schema_set(version)
    command = [sys.executable, "-m", "pytest", *(pytest_args or [])]
    if k:
        command += ["-k", k]
    code = subprocess.call(command, env={**os.environ, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")})
    if code == 0:
        return
    if code == 5:
        raise errors.Findings("pytest collected no tests: that is a failure here")
    if code == 1:
        raise errors.Findings("tests failed (see above)")
    if code == 4:
        raise errors.UsageError("pytest rejected its arguments (see above)")
    raise errors.ToolError(f"pytest stopped with exit {code} (interrupted or internal error)")


@dox_task
def render(c, env=None, check=False, jobs=0, force=False):
    """Render every environment (or --env) into rendered/<env>/, one file per resource.

    :param env: only this environment (comma-separated for several); default $DOX_ENV, else all
    :param check: render afresh without writing; exit 1 naming every stale file in rendered/
    :param jobs: parallel renders (default: one per core)
    :param force: ignore the render cache and render even when no input changed
    """
    from doxops import commands

    commands.render(env=env, check=check, jobs=jobs, force=force)


@dox_task
def validate(c, env=None, path=None, format="text", kubernetes_version=None, namespace=None, force=False,
             policy=None, no_server=False):
    """Validate rendered/<env> (or --path DIR): kubeconform, the policy rules and the pinned API server's dry-run.

    :param env: only this environment (comma-separated for several); default $DOX_ENV, else all
    :param path: validate any directory of manifests instead of rendered environments
    :param format: text (default), json, junit or sarif
    :param kubernetes_version: schema version for --path (default 1.36); environments state their own
    :param namespace: expected namespace for --path (default: not checked)
    :param force: validate even when nothing changed since the last validation
    :param policy: for --path: a policy file like environments/<env>/policy.yaml (levels, options, providedSecrets, roles)
    :param no_server: skip the API-server stage (dry-run applies on the pinned kube-apiserver, 127.0.0.1 only);
        validation is then weaker
    """
    from doxops import commands

    commands.validate(env=env, path=path, format=format, kubernetes_version=kubernetes_version, namespace=namespace,
                      force=force, policy=policy, no_server=no_server)


@dox_task
def diff(c, base="HEAD", head=None, env=None, format="text", exit_code=False, rerender=False, unified=False,
         no_server=False):
    """Show what a change does to each environment, resource by resource (a plan, not a patch).

    :param base: git ref of the old side (default HEAD)
    :param head: git ref of the new side (default: a fresh render of the working tree)
    :param env: only this environment (comma-separated for several)
    :param format: text (default), markdown (pull-request comment parts) or json
    :param exit_code: exit 1 when the cluster changes, 0 when nothing changes for it (values only written
        differently, such as 1024Mi for 1Gi, are no change)
    :param rerender: render both sides from their sources instead of reading committed rendered/ trees
    :param unified: add a unified diff of each resource's YAML (masked like the rest) to text and markdown
    :param no_server: do not ask the pinned kube-apiserver (127.0.0.1 only) which changes it refuses in place;
        immutable fields are then not checked
    """
    from doxops import diff as diff_mod

    if format not in diff_mod.FORMATS:
        raise errors.UsageError(f"unknown --format {format!r}; use one of {', '.join(diff_mod.FORMATS)}")
    verdict = None
    if not no_server:
        from doxops import environments
        from doxops.validate import server

        verdict = server.ImmutableCheck(kubernetes_versions={e.name: e.kubernetes_version
                                                             for e in environments.discover()})
    try:
        changes = diff_mod.run_diff(base, head, env or os.environ.get("DOX_ENV") or None, rerender,
                                    immutable=verdict)
    finally:
        if verdict is not None:
            verdict.close()
    note = _immutability_note(changes, verdict)
    if note:
        print(f"diff: {note}", file=sys.stderr)
    if format == "text":
        print(diff_mod.to_text(changes, unified), end="")
        if note:
            print(f"\nnote: {note}")
    elif format == "json":
        print(diff_mod.to_json(changes))
    else:
        parts = diff_mod.to_markdown(changes, with_unified=unified)
        if note:
            parts[-1] += f"\n> Note: {note}\n"
        print(diff_mod.PART_BREAK.join(parts))
    real = diff_mod.changes_in_cluster(changes)
    if exit_code and real:
        raise errors.Findings(f"{len(real)} resource{'s' if len(real) != 1 else ''} change{'s' if len(real) == 1 else ''} "
                              "in the cluster")


def _immutability_note(changes, verdict):
    """What the reader must know about the immutable-field check: skipped (--no-server) or not judged for some."""
    from doxops import diff as diff_mod

    changed = [c for c in changes if c.action == diff_mod.CHANGE]
    if verdict is None:
        return ("immutability was not checked (--no-server): a change the API server refuses in place shows as an "
                "ordinary change" if changed else "")
    if verdict.unjudged:
        return "immutability was not checked for " + "; ".join(verdict.unjudged)
    return ""


@dox_task
def lint_workflows(c):
    """Check the GitHub Actions workflows with the pinned actionlint."""
    from doxops import toolchain
    from doxops.paths import REPO_ROOT

    tool = toolchain.resolve("actionlint")
    files = sorted(str(p) for p in (REPO_ROOT / ".github" / "workflows").glob("*.y*ml"))
    if not files:
        raise errors.UsageError(".github/workflows has no workflow files")
    proc = subprocess.run([str(tool.path), "-no-color", *files], cwd=REPO_ROOT, capture_output=True, text=True)
    print(proc.stdout, end="")
    if proc.returncode == 1:
        raise errors.Findings("actionlint found problems in the workflows (see above)")
    if proc.returncode != 0:
        raise errors.ToolError(f"actionlint failed (exit {proc.returncode}): {proc.stderr.strip()}")
    print(f"actionlint {tool.version}: {len(files)} workflow files clean")


@dox_task
def chart(c, check=False):
    """Write the chart's generated parts: the library copy in each subchart, the READMEs' values tables and the schemas' descriptions.

    :param check: write nothing; exit 1 naming each stale copy, README or schema.
    """
    from doxops import chart as chart_mod
    from doxops.paths import REPO_ROOT, relative

    if check:
        stale = chart_mod.stale_library_copies() + chart_mod.stale_readmes() + chart_mod.stale_schemas()
        if stale:
            names = ", ".join(relative(p, REPO_ROOT) for p in stale)
            raise errors.Findings(f"stale: {names}; run `./dox chart` and commit the result")
        print("chart: library copies, values tables and schema descriptions are current")
        return
    written = chart_mod.sync_library_copies() + chart_mod.write_readmes() + chart_mod.write_schemas()
    for path in written:
        print(f"wrote {relative(path, REPO_ROOT)}")
    if not written:
        print("chart: library copies, values tables and schema descriptions are current")


def _one_env(env):
    from doxops import environments

    selected = environments.select(env)
    if len(selected) != 1:
        raise errors.UsageError("name one environment with --env (or DOX_ENV)")
    return selected[0]


@dox_task
def minikube_secrets(c, env="minikube", context=None):
    """Create the environment's Secrets in the current kube context from your environment variables.

    Reads DOX_GIT_USERNAME, DOX_GIT_TOKEN, ANTHROPIC_API_KEY and DOX_REDIS_PASSWORD; values go to
    kubectl on stdin and are never printed or written to the repository.

    :param env: the environment whose namespace receives the Secrets (default minikube)
    :param context: kube context to use (default: the current one)
    """
    from doxops import operate

    operate.create_minikube_secrets(_one_env(env), context)


@dox_task
def argocd_bootstrap(c, env=None, context=None):
    """Apply an environment's bootstrap AppProject and root Application (once per cluster).

    :param env: the environment to bootstrap
    :param context: kube context of the cluster running Argo CD (default: the current one)
    """
    from doxops import operate

    operate.argocd_bootstrap(_one_env(env), context)


@dox_task
def bench(c, repeat=3, scales="5,50", resources=10000):
    """Measure render+validate, the policy engine, the credential scan and scaling against the bare tools.

    Prints every row (figure, ratio, target, met) and writes .dox/bench/results.json, results.md (the README's
    table) and scaling.svg; about 11 minutes at the defaults on 2 busy cores.

    :param repeat: runs per measure, pipeline and bare tools alternating (medians are reported)
    :param scales: two or more numbers of generated environments; time per environment is compared between
        the first and the last
    :param resources: generated resources for the policy-engine and credential-scan rows
    """
    from doxops import bench as bench_mod

    try:
        counts = tuple(int(x) for x in scales.split(",") if x.strip())
    except ValueError:
        counts = ()
    if len(counts) < 2 or min(counts) < 1 or repeat < 1 or resources < 1:
        raise errors.UsageError(f"--scales {scales!r} --repeat {repeat} --resources {resources}: give two or more "
                                "comma-separated positive numbers of environments, e.g. 5,50, and positive counts")
    command = f"./dox bench --repeat {repeat} --scales {','.join(map(str, counts))} --resources {resources}"
    try:
        results = bench_mod.run(repeat=repeat, scales=counts, resources=resources, command=command)
    except bench_mod.BenchError as exc:
        raise errors.ToolError(f"a measure could not be taken as labelled: {exc}") from None
    print(bench_mod.table(results))


@dox_task
def e2e(c, env=None, keep=False, sequential=False, argocd=False):
    """Apply each environment to a real local control plane (127.0.0.1 only) and check its acceptance scenarios.

    :param env: only this environment (comma-separated for several); default $DOX_ENV, else all
    :param keep: keep every run's work directory (logs, admin kubeconfig, rendered test variant, git remote)
    :param sequential: run the environments one after the other instead of side by side
    :param argocd: instead, let the real Argo CD sync each environment from a local git remote and check the
        first sync, a merged pull request, prune, self-heal and the steady state (needs redis-server)
    """
    from doxops import environments

    names = [e.name for e in environments.select(env)]
    if argocd:
        from doxops.cluster import argocd as argocd_mod

        argocd_mod.run_argocd_e2e(names, keep=keep, parallel=not sequential)
        return
    from doxops.cluster import e2e as e2e_mod

    e2e_mod.run_e2e(names, keep=keep, parallel=not sequential)


@dox_task
def rehearse(c, env=None, base=None, head=None, format="text", keep=False):
    """Replay a pull request with the real Argo CD on a local control plane and check ./dox diff's plan against it.

    :param env: only this environment (comma-separated for several); default every environment
    :param base: the commit Argo CD starts from; default the merge base of HEAD with main (else origin/main)
    :param head: the commit the remote moves to; default HEAD
    :param format: text, markdown (a pull-request comment) or json
    :param keep: keep every work directory (git remote, logs, admin kubeconfig)
    """
    from doxops.cluster import rehearse as rehearse_mod

    rehearse_mod.rehearse(env=env, base=base, head=head, fmt=format, keep=keep)


ns = Collection(tools, test, render, validate, diff, chart, lint_workflows, minikube_secrets, argocd_bootstrap, bench, e2e,
                rehearse)
