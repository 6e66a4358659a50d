"""The kit's demo application: the contract the tests, the load test and the
demo page speak. It runs on the kit like any application (APP=demo.app:sio,
the default when APP is unset)."""
