// The built-in methods, one file each; importing a file registers its method. Add yours with one line here
// (or import your own file before building a config that names it).
export * from "./dense";
export * from "./dense-retrained";
export * from "./magnitude";
export * from "./random";
export * from "./fw";
export * from "./fw-momentum";
export * from "./structured-magnitude";
export * from "./structured-random";
export * from "./structured-fw";
export * from "./structured-fw-momentum";
