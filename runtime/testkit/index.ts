// chorus/testkit: what a service developer imports to test their own services.
// Model-based testing of any statechart (runtime/testkit/model/) and TestCluster, an in-process
// simulated cluster. See docs/testing.md.
