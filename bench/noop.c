/* The cold-start floor: a static program that does nothing (bench/README.md). */
int main(void) { return 0; }
