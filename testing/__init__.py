"""Support shared by the test suite and the benchmarks: fakes of the platform APIs
(`testing.fakes`) and row builders (`testing.builders`). Never shipped in the wheel."""
