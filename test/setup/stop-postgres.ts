// tap runs this after every test file has finished: no PostgreSQL process
// of the suite outlives it.
import { stopEmbeddedPostgres } from '../../src/postgres/embedded.js'
import { externalServerUrl, testCluster } from '../helpers/cluster.js'

if (externalServerUrl === null) await stopEmbeddedPostgres(testCluster.dataDir)
