"""Black-box tests of //app:portserver: what the start-up lines say.

  PoolSpellingTest     a pool written with blanks (' 10-20') is served and
                       logged without them, as "pool 10-20".
"""

import harness


def messages(server):
    with server.stderr.cond:
        lines = list(server.stderr.lines)
    return [l for l in lines if harness.LOG_LINE_RE.match(l)]


class PoolSpellingTest(harness.ServerTestCase):

    def test_blanks_around_the_pool_are_dropped(self):
        for spec, canonical in ((' 35500-35509', '35500-35509'),
                                ('\t35510 - 35512 , 35513', '35510-35512,35513')):
            with self.subTest(spec=spec):
                server = harness.Server(
                    spec, args=['--portserver_state_file=none'])
                server.pool = harness.pool_ports(canonical)
                self.servers.append(server)
                server.start()
                serving = [l for l in messages(server) if 'Serving on' in l]
                self.assertEqual(len(serving), 1, server.log())
                self.assertIn('(pool %s, %d ports;' % (
                    canonical, len(server.pool)), serving[0])
                owner = self.owner()
                self.assertIn(harness.ask(server.address, owner.pid),
                              server.pool, server.log())


if __name__ == '__main__':
    harness.main('startup_test')
