// Copies each node's SVG icon beside its compiled code (tsc copies only .ts).
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
for (const dir of ['nodes', 'credentials']) {
  const walk = (from) => {
    for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
      const source = path.join(from, entry.name);
      if (entry.isDirectory()) walk(source);
      else if (entry.name.endsWith('.svg')) {
        const target = path.join(root, 'dist', path.relative(root, source));
        fs.mkdirSync(path.dirname(target), { recursive: true });
        fs.copyFileSync(source, target);
      }
    }
  };
  walk(path.join(root, dir));
}
