# The test run builds a second version of this plugin with this line changed
# (host/tests/all/polyglot/python.rs): the hot-swap test tells them apart.
VERSION = "v1"
