"""A simulated Asterisk for FastAGI: the caller, the host's sounds and recordings, the console
softphone. Tooling beside `ivr/`, not part of it: the tests, the benchmarks and `pingjia call`
use it; no production part imports it (import-linter's `tooling-apart` contract)."""
