// The in-process registry lives in src/testing (so the demo can use it from dist/); tests import it here.
export * from '../../src/testing/mem-registry/index.js';
