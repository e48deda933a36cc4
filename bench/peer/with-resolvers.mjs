// PostGraphile v5 declares Node 22; on Node 20 it only misses Promise.withResolvers.
if (typeof Promise.withResolvers !== "function") {
  Promise.withResolvers = () => { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; };
}
