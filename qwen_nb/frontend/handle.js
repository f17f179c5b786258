// A live reply's or a panel's model: a thin handle onto qwen_nb's front end (qwen.js),
// which the kernel's one "core" model loads once, so each cell sends only these lines.
function frontEnd(version) {
  const loaded = (globalThis.__qwenNbFrontEnd ??= {});
  if (!loaded[version]) {
    let resolve;
    loaded[version] = new Promise((done) => { resolve = done; });
    loaded[version].resolve = resolve;
  }
  return loaded[version];
}

export default {
  async initialize({model}) {
    // Asking for the core model loads it where it is not loaded yet (e.g. in a host that
    // gives each output its own frame); its module then publishes the front end.
    await model.widget_manager.get_model(model.get("core"));
    return (await frontEnd(model.get("version"))).initialize({model});
  },
  async render({model, el}) {
    return (await frontEnd(model.get("version"))).render({model, el});
  },
};
