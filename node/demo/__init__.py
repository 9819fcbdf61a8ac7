"""``circle-node demo``: a realistic federation of three nodes, built through the same
services as the CLI, run on loopback, and shown in the TUI (docs/demo.md).

- :mod:`node.demo.layout`: the demo directory, its marker file and the cast (who lives
  on which node, which circles exist);
- :mod:`node.demo.federation`: the three homes and replicas, and in-process sync between
  them while the story is built;
- :mod:`node.demo.story`: the story itself (circles, links, proposals, an election,
  ideas, the Angels Den, a funded project);
- :mod:`node.demo.run`: three ``serve`` processes, peered, until they converge and verify.
"""
