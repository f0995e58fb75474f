// The part of jStat fwprune uses (the package ships no types).
declare module "jstat" {
  export const jStat: {
    studentt: { inv(p: number, dof: number): number };
  };
}
