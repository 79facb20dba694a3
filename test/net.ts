export { freeLoopbackPort as freePort } from '../src/free-port.js'
