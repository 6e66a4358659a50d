"""`python -m loadtest SCENARIO --url URL ...`: argument parsing and the run.

`main(argv, controller=None)` is the Python entry point the tests use; a
controller (anything with kill/stop/start(name)) replaces --kill-via.
Exit status: 0 done, 1 the run failed (selftest: under --min-rate), 2
transport mismatch (asked for one transport, got another), 3 the generator
was saturated or lagging (invalid).
"""
import argparse
import sys
import time
from pathlib import Path

from loadtest import config, control, environment, report
from loadtest.pool import Pool, RunError
from loadtest.run import Run
from loadtest.scenarios import scenario

EXIT_OK, EXIT_FAILED, EXIT_TRANSPORT, EXIT_SATURATED = 0, 1, 2, 3


def parser() -> argparse.ArgumentParser:
    return config.add_options(argparse.ArgumentParser(
        prog='python -m loadtest', description=__doc__.split('\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter))


def controller_for(cfg: config.Config, module, controller=None) -> control.Controller:
    if controller is not None:
        return controller if isinstance(controller, control.Controller) \
            else control.FixtureController(controller)
    try:
        ctl = control.detect(cfg.kill_via, cfg.run_dir, cfg.project)
    except RuntimeError as exc:
        raise RunError(str(exc)) from None
    if module.NEEDS_CONTROLLER and ctl.kind == 'none':
        raise RunError(f'{cfg.scenario} needs to reach the instances: start the '
                       f'cluster (make local / make up) or pass --kill-via.')
    return ctl


def exit_code(result: dict) -> int:
    if result.get('transport_mismatch'):
        return EXIT_TRANSPORT
    if result.get('failed'):
        return EXIT_FAILED
    return EXIT_OK if result['valid'] else EXIT_SATURATED


def run(argv=None, controller=None) -> dict:
    """Parse argv, run the scenario, write JSON and plots; return the result
    (with `exit_code`, `out` and `plots` added)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = config.from_args(parser().parse_args(argv), environment.command_line(argv))
    module = scenario(cfg.scenario)
    ctl = control.Controller() if cfg.scenario == 'selftest' else \
        controller_for(cfg, module, controller)
    r = Run(cfg, ctl, describe_cluster=cfg.scenario != 'selftest')
    with module.prepared(r) if hasattr(module, 'prepared') else _nothing():
        r.pool = Pool(r.cfg)
        try:
            module.run(r)
        finally:
            r.pool.close()
    result = r.finish()
    out = Path(cfg.out or f'results/{cfg.scenario}-{time.strftime("%Y%m%d-%H%M%S")}.json')
    result.update(exit_code=exit_code(result), out=str(out), plots=[])
    out.parent.mkdir(parents=True, exist_ok=True)
    if cfg.plots:
        result['plots'] = [str(p) for p in report.plot(result, out.with_suffix(''))]
    report.write_json(result, out)
    return result


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main(argv=None, controller=None) -> int:
    try:
        result = run(argv, controller)
    except RunError as exc:
        print(f'loadtest: error: {exc}', file=sys.stderr)
        return EXIT_FAILED
    print(report.summary_table(result))
    print(f'result: {result["out"]}' + (f'  plots: {", ".join(result["plots"])}'
                                        if result['plots'] else ''))
    if result['exit_code'] == EXIT_TRANSPORT:
        print('\nFAILED: the clients did not get the transport they asked for; '
              'these numbers are not WebSocket numbers.', file=sys.stderr)
    elif result['exit_code'] == EXIT_SATURATED:
        print('\nINVALID: ' + '; '.join(result['problems']), file=sys.stderr)
    elif result['exit_code'] == EXIT_FAILED:
        print('\nFAILED: ' + result['failed'], file=sys.stderr)
    return result['exit_code']
