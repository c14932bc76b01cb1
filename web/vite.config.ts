// Builds the single-page app into dist/ (or POLO_WEB_OUT_DIR, which the
// polo-web crate's build script sets to a directory under Cargo's OUT_DIR).
// Hashed file names under assets/ let the server cache them for a year.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: process.env.POLO_WEB_OUT_DIR ?? "dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 800,
    target: "es2020",
  },
  // `npm run dev` (and `vite preview`) proxy the API to a running polo
  // (POLO_DEV_API, default http://127.0.0.1:8080).
  server: {
    proxy: { "/api": process.env.POLO_DEV_API ?? "http://127.0.0.1:8080" },
  },
});
