// Type-aware linting: the rules that matter most in a proxy are the promise rules,
// because a dropped promise on the data path is a silent leak.
import eslint from "@eslint/js";
import { createTypeScriptImportResolver } from "eslint-import-resolver-typescript";
import importX from "eslint-plugin-import-x";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "test-artifacts/", "coverage/"] },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          // node:test's describe/it return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["describe", "it", "test", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-syntax": [
        "error",
        { selector: "TSEnumDeclaration", message: "Use a string union, not an enum." },
      ],
    },
  },
  {
    // No import cycles: a cycle makes module initialisation order matter and blurs which layer
    // depends on which. import-x walks the module graph as the TypeScript resolver resolves it (the
    // ".js" specifiers of NodeNext imports reach their ".ts" sources). It follows value imports only;
    // cycles through type-only imports, and cycles between folders, are caught by
    // test/unit/layering.test.ts.
    files: ["src/**/*.ts", "test/**/*.ts", "bench/**/*.ts"],
    plugins: { "import-x": importX },
    settings: {
      // Without these, import-x takes only .js files for modules and the graph stops at every .ts.
      "import-x/extensions": [".ts", ".js"],
      "import-x/parsers": { "@typescript-eslint/parser": [".ts"] },
      "import-x/resolver-next": [createTypeScriptImportResolver({ project: "tsconfig.json" })],
    },
    rules: {
      "import-x/no-cycle": ["error", { ignoreExternal: true }],
    },
  },
  {
    // The HTTP/2 codec is a library of its own: frames, SETTINGS, HPACK and the flood guard, testable
    // and reusable without sockets, so it may import only its own files and node:buffer.
    files: ["src/h2/**/*.ts"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              regex: "^(?!\\./[^/]+$|node:buffer$)",
              message: "src/h2/ imports only its own files and node:buffer.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ["**/*.js", "**/*.mjs"],
    ...tseslint.configs.disableTypeChecked,
  },
);
