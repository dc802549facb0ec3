/* Plain C in the consumer target: tapegrad's usage requirements must not
   break it (they once forced a C++ header into every file). The closed form
   of the gradient that main.cpp checks tapegrad's against. */
#include <math.h>

/* d/dw[i][j] of sum(3 tanh(x w)) for a 1x2 row x and 2x2 w. */
double closed_form_grad(const double x[2], const double w[2][2], int i, int j) {
    double z = x[0] * w[0][j] + x[1] * w[1][j];
    double t = tanh(z);
    return 3.0 * x[i] * (1.0 - t * t);
}
